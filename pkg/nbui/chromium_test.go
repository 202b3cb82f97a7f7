package nbui

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/peftlab/peftlab/pkg/nbui/nbuitest"
)

// These tests load rendered charts in headless Chromium with the network cut off, and check in
// the resulting DOM that ECharts created its instances and drew the charts. They need Debian's
// chromium and the installed ECharts scripts (`go run ./kernel install`); when either is
// missing they are skipped, except under CI=true, where they fail.

func needScripts(t *testing.T) {
	t.Helper()
	for _, s := range []string{commonScript, fullScript} {
		if _, err := loadScript(s); err != nil {
			if errors.Is(err, ErrEChartsMissing) {
				nbuitest.SkipOrFail(t, err.Error())
			}
			t.Fatal(err)
		}
	}
}

// The only URLs in an ECharts bundle: XML namespace names and licence links, which are
// identifiers, never fetched.
var bundleURLs = map[string]bool{
	"http://www.apache.org/licenses/LICENSE-2.0":                true,
	"http://www.w3.org/1999/xlink":                              true,
	"http://www.w3.org/2000/svg":                                true,
	"http://www.w3.org/2000/xmlns/":                             true,
	"http://www.w3.org/XML/1998/namespace":                      true,
	"https://github.com/ecomfe/zrender/blob/master/LICENSE.txt": true,
}

var reURL = regexp.MustCompile(`(?i)https?://[^\s"'<>()\\]*`)

// checkNoNetwork asserts the page cannot load anything: outside the inlined bundles there is no
// http(s) URL and nothing that fetches (src, href, @import, url()); inside them the only URLs
// are the known namespace and licence strings.
func checkNoNetwork(t *testing.T, page string) {
	t.Helper()
	page = stripStatic(t, page)
	rest := page
	for _, name := range []string{commonScript, fullScript} {
		src, err := loadScript(name)
		if err != nil {
			t.Fatal(err)
		}
		rest = strings.ReplaceAll(rest, src, "")
	}
	if u := reURL.FindAllString(rest, -1); len(u) > 0 {
		t.Errorf("the page has http(s) URLs outside the ECharts bundle: %q", u)
	}
	for _, bad := range []string{"src=", "href=", "@import", "url(", "<link"} {
		if strings.Contains(strings.ToLower(rest), bad) {
			t.Errorf("the page (outside the ECharts bundle) contains %q, which could load from the network", bad)
		}
	}
	for _, u := range reURL.FindAllString(page, -1) {
		if !bundleURLs[u] {
			t.Errorf("unexpected URL in the page: %q", u)
		}
	}
}

func count(s, sub string) int { return strings.Count(s, sub) }

func tailOf(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// A saved report, exactly as WriteHTML writes it, renders offline with the default (canvas)
// renderer: one ECharts instance per chart, none failed.
func TestReportRendersOfflineInChromium(t *testing.T) {
	nbuitest.Chromium(t)
	needScripts(t)
	file := filepath.Join(t.TempDir(), "report.html")
	loss := Line("loss", Axes{X: "step"},
		Series{Name: "train", Y: []float64{2.3, 1.7, 1.2, 0.9, 0.7}},
		Series{Name: "eval", X: []float64{0, 2, 4}, Y: []float64{2.4, 1.4, 0.8}})
	acc := Bar("accuracy", Axes{}, []string{"lora", "adalink"}, Series{Name: "sst2", Y: []float64{0.91, 0.89}})
	if err := WriteHTML(file, "report", loss, acc); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	checkNoNetwork(t, string(page))
	dom := nbuitest.DumpDOM(t, file)
	if n := nbuitest.Instances(dom); n != 2 {
		t.Errorf("%d ECharts instances in the DOM, want 2", n)
	}
	if n := count(dom, `data-nbui-chart="rendered"`); n != 2 {
		t.Errorf("%d charts rendered, want 2\n%s", n, tailOf(dom, 2000))
	}
	if n := count(dom, "<canvas"); n < 2 {
		t.Errorf("%d canvases in the DOM, want at least 2", n)
	}
}

// svg switches a chart to the SVG renderer, so that what it drew (titles, legends, labels) is
// visible in the dumped DOM.
func svg(bc *charts.BaseConfiguration) {
	bc.Initialization.Renderer = "svg"
}

// In a notebook page: RequireJS is loaded (classic Notebook), cells are re-run, and charts that
// need different ECharts builds follow each other. Every chart must draw, the bundle must be
// evaluated once per build, and a title that looks like HTML must stay text.
func TestNotebookPageInChromium(t *testing.T) {
	nbuitest.Chromium(t)
	needScripts(t)
	const evil = `</script><script>document.title="pwned"</script>`
	line := Line(evil, Axes{X: "step"}, Series{Name: "train-loss", Y: []float64{1, 0.5, 0.25}},
		Series{Name: "diverged", Y: []float64{1, 2, nanValue()}})
	line.SetGlobalOptions(svg)
	bar := Bar("bars", Axes{}, []string{"a", "b"}, Series{Name: "bar-series", Y: []float64{1, 2}})
	bar.SetGlobalOptions(svg)
	heat := Heatmap("grid", []string{"r=1", "r=4"}, []string{"lr=1e-3", "lr=1e-4"},
		[][]float64{{0.8734, 0.9012}, {0.5, nanValue()}})
	heat.SetGlobalOptions(svg)

	cell1, err := HTML(line, bar) // common build
	if err != nil {
		t.Fatal(err)
	}
	cell2, err := HTML(heat) // needs the full build
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cell1, evil) {
		t.Fatal("the chart title was written unescaped into the script")
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>nb</title></head><body>\n")
	// A RequireJS-style AMD loader, as in the classic Notebook: the bundle must not register
	// with it, but set the global echarts.
	b.WriteString("<script>window.define = function () { window.amdUsed = true; }; window.define.amd = {};</script>\n")
	b.WriteString("<div id=\"output1\">" + cell1 + "</div>\n")
	b.WriteString("<script>window.firstECharts = window.echarts;</script>\n")
	// Re-running the cell: Jupyter removes the cell's old output, and the same chart ids come
	// again (the charts have fixed ids once rendered).
	b.WriteString("<script>document.getElementById(\"output1\").remove();</script>\n")
	b.WriteString(cell1)
	b.WriteString("<script>document.body.setAttribute(\"data-same-common\", String(window.firstECharts === window.echarts));</script>\n")
	b.WriteString(cell2)
	b.WriteString("<script>document.body.setAttribute(\"data-amd-used\", String(!!window.amdUsed));</script>\n")
	b.WriteString("</body></html>\n")
	page := b.String()
	checkNoNetwork(t, page)
	file := filepath.Join(t.TempDir(), "notebook.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := nbuitest.DumpDOM(t, file)

	if n := count(dom, `data-nbui-chart="rendered"`); n != 3 {
		t.Errorf("%d charts rendered, want 3 (line and bar re-run, heatmap)\n%s", n, tailOf(dom, 3000))
	}
	if strings.Contains(dom, `data-nbui-chart="failed"`) {
		t.Errorf("a chart failed: %s", tailOf(dom, 3000))
	}
	if n := nbuitest.Instances(dom); n != 3 {
		t.Errorf("%d ECharts instances, want 3", n)
	}
	for _, want := range []string{
		`data-amd-used="false"`,   // the bundle hid define
		`data-same-common="true"`, // the re-run did not evaluate the bundle again
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the DOM lacks %q", want)
		}
	}
	// What each chart drew (SVG text), looked up inside its own div, not in the scripts.
	for c, wants := range map[Chart][]string{
		line: {"train-loss", "diverged", "&lt;/script&gt;&lt;script&gt;document.title"}, // legend, title as text
		bar:  {"bar-series", ">a<", ">b<"},
		heat: {">0.8734<", ">0.9012<", ">0.5<", ">lr=1e-4<"}, // cell labels and a row label: needs the full build
	} {
		drawn := drawnIn(dom, chartID(t, c))
		for _, want := range wants {
			if !strings.Contains(drawn, want) {
				t.Errorf("chart %s did not draw %q", chartID(t, c), want)
			}
		}
	}
	if strings.Contains(dom, "<title>pwned</title>") {
		t.Error("the title's HTML was executed")
	}
}

// chartID returns the id of the chart's div.
func chartID(t *testing.T, c Chart) string {
	t.Helper()
	m := reID.FindStringSubmatch(c.RenderSnippet().Element)
	if m == nil {
		t.Fatal("no chart id")
	}
	return m[1]
}

func nanValue() float64 { return math.NaN() }

// drawnIn returns what ECharts drew inside the div with the given id (the last one, for a
// re-run): the DOM from the div to the next script.
func drawnIn(dom, id string) string {
	i := strings.LastIndex(dom, `<div id="`+id+`"`)
	if i < 0 {
		return ""
	}
	rest := dom[i:]
	if j := strings.Index(rest, "<script"); j >= 0 {
		rest = rest[:j]
	}
	return rest
}

var reScript = regexp.MustCompile(`(?s)<script.*?</script>`)

// Where a notebook's scripts do not run (an untrusted notebook in JupyterLab, a viewer), the
// chart's div still shows its static picture: the markup with every script removed loads the
// pictures as images.
func TestStaticPicturesWithoutScriptsInChromium(t *testing.T) {
	nbuitest.Chromium(t)
	needScripts(t)
	line := Line("loss", Axes{X: "step", Y: "loss"}, Series{Name: "train", Y: []float64{2, 1, 0.5}})
	heat := Heatmap("grid", []string{"a", "b"}, []string{"x", "y"}, [][]float64{{1, 2}, {3, 4}})
	frag, err := HTML(line, heat)
	if err != nil {
		t.Fatal(err)
	}
	bare := reScript.ReplaceAllString(frag, "")
	if strings.Contains(bare, "<script") || strings.Count(bare, `class="nbui-static"`) != 2 {
		t.Fatalf("stripping the scripts left %d pictures:\n%.500s", strings.Count(bare, `class="nbui-static"`), bare)
	}
	page := "<!DOCTYPE html><html><body>" + bare +
		`<script>window.addEventListener("load", () => { document.body.setAttribute("data-static", Array.from(document.querySelectorAll("img.nbui-static")).map(i => i.complete && i.naturalWidth === 800 ? "ok" : "broken").join(",")); });</script>` +
		"</body></html>"
	file := filepath.Join(t.TempDir(), "untrusted.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := nbuitest.DumpDOM(t, file)
	if !strings.Contains(dom, `data-static="ok,ok"`) {
		t.Errorf("the static pictures did not load as images: %s", tailOf(dom, 1500))
	}
	if nbuitest.Instances(dom) != 0 {
		t.Error("an ECharts instance without scripts?")
	}
}
