package tasks

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"strings"
)

// PNG encodes a rendered image (size x size x channels float32 in [0, 1]) as PNG.
func PNG(px []float32, size, channels int) ([]byte, error) {
	if err := checkImage(px, size, channels); err != nil {
		return nil, err
	}
	to8 := func(v float32) uint8 {
		return uint8(min(max(v, 0), 1)*255 + 0.5)
	}
	var img image.Image
	if channels == 1 {
		g := image.NewGray(image.Rect(0, 0, size, size))
		for k, v := range px {
			g.Pix[k] = to8(v)
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, size, size))
		for k := 0; k < size*size; k++ {
			c.SetNRGBA(k%size, k/size, color.NRGBA{to8(px[3*k]), to8(px[3*k+1]), to8(px[3*k+2]), 255})
		}
		img = c
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// previewChars bounds the prompt text shown per example.
const previewChars = 400

// HTML renders examples as a self-contained table (images inline as data-URI PNGs, no network):
// image, prompt, expected answer and, when predictions is not nil, the model's answers.
func (t *Task) HTML(examples []Example, predictions []string) (string, error) {
	if predictions != nil && len(predictions) != len(examples) {
		return "", fmt.Errorf("HTML: %d examples but %d predictions", len(examples), len(predictions))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<div class="peftlab-task"><b>%s</b> <span style="color:#666">%s; metric %s</span>`,
		html.EscapeString(t.Name), html.EscapeString(t.Description), t.Metric)
	b.WriteString(`<table style="border-collapse:collapse;font-size:13px"><tr>`)
	if t.Multimodal() {
		b.WriteString(`<th>image</th>`)
	}
	b.WriteString(`<th style="text-align:left">prompt</th><th style="text-align:left">answer</th>`)
	if predictions != nil {
		b.WriteString(`<th style="text-align:left">prediction</th>`)
	}
	b.WriteString("</tr>")
	cell := `<td style="border-top:1px solid #ddd;padding:4px;vertical-align:top;text-align:left">`
	for i, e := range examples {
		b.WriteString("<tr>")
		if t.Multimodal() {
			b.WriteString(cell)
			if e.HasImage() {
				px, err := e.Image()
				if err != nil {
					return "", err
				}
				p, err := PNG(px, t.ImageSize, t.Channels)
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, `<img width="84" height="84" style="image-rendering:pixelated" src="data:image/png;base64,%s">`,
					base64.StdEncoding.EncodeToString(p))
			}
			b.WriteString("</td>")
		}
		prompt := e.Prompt
		if len(prompt) > previewChars {
			prompt = truncateText(prompt, previewChars) + " …"
		}
		answer := html.EscapeString(e.Target)
		if len(e.References) > 1 {
			answer += ` <span style="color:#888">(also: ` + html.EscapeString(strings.Join(e.References[1:], "; ")) + ")</span>"
		}
		b.WriteString(cell + html.EscapeString(prompt) + "</td>" + cell + answer + "</td>")
		if predictions != nil {
			color := "#a00"
			if t.Kind == Classification && t.ClassOf(predictions[i]) == e.Label || t.Kind == Captioning && containsWords(e.References, predictions[i]) {
				color = "#070"
			}
			fmt.Fprintf(&b, `%s<span style="color:%s">%s</span></td>`, cell, color, html.EscapeString(predictions[i]))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table></div>")
	return b.String(), nil
}

// Preview renders the first n examples of a split.
func (t *Task) Preview(split string, n int) (string, error) {
	ex, err := t.Split(split)
	if err != nil {
		return "", err
	}
	return t.HTML(ex[:min(n, len(ex))], nil)
}
