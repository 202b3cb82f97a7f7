package nbui

import (
	"encoding/base64"
	"encoding/xml"
	"io"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

var reStatic = regexp.MustCompile(`<img class="nbui-static" alt="[^"]*" width="\d+" height="\d+" src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)">`)

// stripStatic removes the static chart pictures from HTML, after checking that each is an SVG
// data URL that references nothing but the SVG namespace: what is left must then load nothing.
func stripStatic(t *testing.T, page string) string {
	t.Helper()
	for _, m := range reStatic.FindAllStringSubmatch(page, -1) {
		svg, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatalf("a static picture is not base64: %v", err)
		}
		rest := strings.ReplaceAll(string(svg), `xmlns="http://www.w3.org/2000/svg"`, "")
		for _, bad := range []string{"http", "href", "url(", "<script", "<image"} {
			if strings.Contains(rest, bad) {
				t.Errorf("a static picture contains %q:\n%s", bad, svg)
			}
		}
	}
	if strings.Count(page, `class="nbui-static"`) != len(reStatic.FindAllString(page, -1)) {
		t.Errorf("a static picture is not in the expected form")
	}
	return reStatic.ReplaceAllString(page, "")
}

// svgOf draws a chart's static picture and checks that it is well-formed XML.
func svgOf(t *testing.T, c Chart) string {
	t.Helper()
	c.RenderSnippet() // go-echarts fills some options (a bar chart's categories) when rendering
	svg, ok := staticSVG(c.(interface{ JSON() map[string]any }).JSON(), 800, 400)
	if !ok {
		t.Fatalf("no static picture")
	}
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the static picture is not well-formed XML: %v\n%s", err, svg)
		}
	}
	return svg
}

func TestStaticLine(t *testing.T) {
	const evil = `</text><script>alert(1)</script>`
	var long []float64
	for i := range 10000 {
		long = append(long, 1/float64(i+1))
	}
	c := Line("loss "+evil, Axes{X: "step", Y: "loss"},
		Series{Name: "train", Y: long},
		Series{Name: "diverged", Y: []float64{1, 0.5, math.NaN(), 0.2, 0.1}},
		Series{Name: "eval", X: []float64{0, 5000, 9999}, Y: []float64{1, 0.01, 0.001}})
	c.YAxisList[0].Type = "log"
	svg := svgOf(t, c)
	if strings.Contains(svg, "<script") || !strings.Contains(svg, "&lt;/text&gt;&lt;script&gt;") {
		t.Errorf("the title is not escaped:\n%.500s", svg)
	}
	// One polyline for train and eval each, two for the series with a gap.
	if n := strings.Count(svg, "<polyline"); n != 4 {
		t.Errorf("%d polylines, want 4 (a NaN splits its curve)", n)
	}
	for _, want := range []string{">train<", ">diverged<", ">eval<", ">step<", ">loss<", ">0.001<", ">1<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the picture lacks %q", want)
		}
	}
	// 10000 points over about 700 pixels: decimated, with the curve's ends kept.
	first := svg[strings.Index(svg, "<polyline"):]
	first = first[:strings.Index(first, "/>")]
	if n := strings.Count(first, ","); n > 2200 || n < 700 {
		t.Errorf("the 10000-point curve has %d points in the picture, want it decimated to about 3 per pixel", n)
	}
	if len(svg) > 80000 {
		t.Errorf("the picture is %d bytes", len(svg))
	}
}

func TestStaticBarHeatmapScatter(t *testing.T) {
	bar := svgOf(t, Bar("acc", Axes{X: "method", Y: "accuracy"}, []string{"lora", "adalink", "ft"},
		Series{Name: "sst2", Y: []float64{0.9, math.NaN(), 0.8}}, Series{Name: "imdb", Y: []float64{0.85, 0.8, 0.7}}))
	// Background, 5 bars (one NaN), 2 legend marks.
	if n := strings.Count(bar, "<rect"); n != 1+5+2 {
		t.Errorf("%d rects in the bar picture, want 8", n)
	}
	for _, want := range []string{">lora<", ">adalink<", ">ft<", ">sst2<", ">imdb<", ">0<"} {
		if !strings.Contains(bar, want) {
			t.Errorf("the bar picture lacks %q", want)
		}
	}
	heat := svgOf(t, LabeledHeatmap("grid", []string{"a", "b"}, []string{"r1", "r2"},
		[][]float64{{1, 2}, {3, math.NaN()}}, [][]string{{"1 ± 0.1", "2 ± 0.2"}, {"3 ± 0.3", "gone"}}))
	for _, want := range []string{">1 ± 0.1<", ">3 ± 0.3<", ">r1<", ">b<"} {
		if !strings.Contains(heat, want) {
			t.Errorf("the heatmap picture lacks %q", want)
		}
	}
	if strings.Contains(heat, "gone") {
		t.Error("the heatmap picture labels a NaN cell")
	}
	sc := svgOf(t, Scatter("s", Axes{X: "params", LogX: true}, Series{Name: "p", X: []float64{10, 1000}, Y: []float64{1, 2}}))
	if n := strings.Count(sc, "<circle"); n != 2 {
		t.Errorf("%d points in the scatter picture, want 2", n)
	}
}

// A chart with series the picture does not draw gets a sentence instead, and the chart markup
// always holds one of the two inside the chart's div.
func TestStaticUnsupported(t *testing.T) {
	pie := charts.NewPie()
	pie.AddSeries("p", []opts.PieData{{Name: "a", Value: 1}})
	pie.RenderSnippet()
	if _, ok := staticSVG(pie.JSON(), 800, 400); ok {
		t.Error("a pie chart got a static picture")
	}
	s, _, err := snippet(pie)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(s, `<p class="nbui-static"`) || strings.Contains(s, "<img") {
		t.Errorf("a pie chart's markup:\n%.300s", s)
	}
	s, _, err = snippet(Line("l", Axes{}, Series{Name: "a", Y: []float64{1, 2}}))
	if err != nil {
		t.Fatal(err)
	}
	div := s[:strings.Index(s, "</div>")]
	if !reStatic.MatchString(div) {
		t.Errorf("the chart's div holds no static picture:\n%.300s", s)
	}
	if !strings.Contains(s, "el.textContent = \"\";") {
		t.Error("the script does not replace the picture with the live chart")
	}
}
