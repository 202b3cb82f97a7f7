package serve

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
)

// pngMagic starts every PNG file.
var pngMagic = []byte("\x89PNG\r\n\x1a\n")

// DecodePNG turns a PNG file into the model's image layout: size·size·channels float32
// values in [0, 1], row-major, as the lab's tasks render images. Transparency is composited
// over white (as the emoji tasks do); a gray image is repeated over three channels; for one
// channel, colour becomes luminance (0.299 R + 0.587 G + 0.114 B). It reads the header
// first, so a file of the wrong size or format is refused before any pixel is decoded.
func DecodePNG(data []byte, size, channels int) ([]float32, error) {
	if !bytes.HasPrefix(data, pngMagic) {
		return nil, fmt.Errorf("the image is not a PNG file (it does not start with the PNG signature)")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the PNG header is unreadable: %w", err)
	}
	if cfg.Width != size || cfg.Height != size {
		return nil, fmt.Errorf("the image is %dx%d pixels, the base takes %dx%d", cfg.Width, cfg.Height, size, size)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("the PNG file is damaged: %w", err)
	}
	b := img.Bounds()
	out := make([]float32, 0, size*size*channels)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			var r, g, bl float32
			switch c := img.At(x, y).(type) {
			case color.Gray:
				r = float32(c.Y) / 255
				g, bl = r, r
			case color.Gray16:
				r = float32(c.Y) / 65535
				g, bl = r, r
			default:
				n := color.NRGBAModel.Convert(c).(color.NRGBA)
				r, g, bl = float32(n.R)/255, float32(n.G)/255, float32(n.B)/255
				if n.A < 255 {
					a := float32(n.A) / 255
					r, g, bl = a*r+1-a, a*g+1-a, a*bl+1-a
				}
			}
			if channels == 1 {
				out = append(out, 0.299*r+0.587*g+0.114*bl)
			} else {
				out = append(out, r, g, bl)
			}
		}
	}
	return out, nil
}

// EncodePNG writes an image in the model's layout (size·size·channels values in [0, 1]) as
// an 8-bit PNG, RGB or gray. Values are rounded to the nearest 1/255, so DecodePNG gives
// back exactly the values that already were multiples of 1/255 (digits, clothes).
func EncodePNG(px []float32, size, channels int) ([]byte, error) {
	if channels != 1 && channels != 3 {
		return nil, fmt.Errorf("EncodePNG: %d channels, want 1 or 3", channels)
	}
	if len(px) != size*size*channels {
		return nil, fmt.Errorf("EncodePNG: %d values for a %dx%dx%d image", len(px), size, size, channels)
	}
	q := func(v float32) uint8 { return uint8(math.Round(math.Min(1, math.Max(0, float64(v))) * 255)) }
	var img image.Image
	if channels == 1 {
		g := image.NewGray(image.Rect(0, 0, size, size))
		for i, v := range px {
			g.Pix[i] = q(v)
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, size, size))
		for i := range size * size {
			c.Pix[4*i], c.Pix[4*i+1], c.Pix[4*i+2], c.Pix[4*i+3] = q(px[3*i]), q(px[3*i+1]), q(px[3*i+2]), 255
		}
		img = c
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
