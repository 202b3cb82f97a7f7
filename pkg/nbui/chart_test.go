package nbui

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// A missing script is an error that names the install command, for every way of rendering.
func TestMissingScriptSaysHowToInstall(t *testing.T) {
	t.Setenv(labdir.EnvAssets, t.TempDir())
	c := Line("loss", Axes{X: "step"}, Series{Name: "train", Y: []float64{1, 2}})
	_, err := HTML(c)
	if !errors.Is(err, ErrEChartsMissing) {
		t.Fatalf("HTML without the script: err = %v, want ErrEChartsMissing", err)
	}
	if !strings.Contains(err.Error(), "run: go run ./kernel install") {
		t.Errorf("the error does not say which command installs the script: %v", err)
	}
	path := filepath.Join(t.TempDir(), "r.html")
	if err := WriteHTML(path, "r", c); !errors.Is(err, ErrEChartsMissing) {
		t.Errorf("WriteHTML without the script: err = %v", err)
	}
	if _, err := os.Stat(path); err == nil {
		t.Error("WriteHTML left a file behind after failing")
	}
	// Outside a notebook, Show does nothing, so library code may call it without the script.
	if err := Show(c); err != nil {
		t.Errorf("Show outside a notebook: %v", err)
	}
}

// A copy with the file but without the install stamp (an interrupted or hand-made copy) is not
// trusted, and a stamped copy whose file disappeared is reported too.
func TestIncompleteInstallIsMissing(t *testing.T) {
	assets := t.TempDir()
	t.Setenv(labdir.EnvAssets, assets)
	dir := EChartsDir()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, commonScript), []byte("window.echarts = {};"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadScript(commonScript); !errors.Is(err, ErrEChartsMissing) {
		t.Errorf("unstamped copy: err = %v, want ErrEChartsMissing", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".peftlab-stamp"), []byte(echartsPackage.Stamp()), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadScript(fullScript); !errors.Is(err, ErrEChartsMissing) || !strings.Contains(err.Error(), "echarts.min.js") {
		t.Errorf("stamped copy without %s: err = %v", fullScript, err)
	}
	if s, err := loadScript(commonScript); err != nil || s != "window.echarts = {};" {
		t.Errorf("stamped copy: %q, %v", s, err)
	}
}

func TestNeedsFull(t *testing.T) {
	funnel := charts.NewFunnel()
	funnel.AddSeries("f", []opts.FunnelData{{Name: "a", Value: 1}})
	pie := charts.NewPie()
	pie.AddSeries("p", []opts.PieData{{Name: "a", Value: 1}})
	for _, tc := range []struct {
		name string
		c    Chart
		want bool
	}{
		{"line", Line("l", Axes{X: "x"}, Series{Name: "a", Y: []float64{1}}), false},
		{"bar", Bar("b", Axes{}, []string{"a"}, Series{Name: "a", Y: []float64{1}}), false},
		{"pie", pie, false},
		{"heatmap", Heatmap("h", []string{"a"}, []string{"b"}, [][]float64{{1}}), true}, // visualMap + heatmap
		{"funnel", funnel, true}, // series type only
	} {
		tc.c.RenderSnippet()
		got, err := needsFull(tc.c)
		if err != nil || got != tc.want {
			t.Errorf("needsFull(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

// NaN and Inf (a diverged run) become gaps instead of breaking the JSON, which go-echarts would
// silently turn into an empty chart.
func TestNonFiniteValues(t *testing.T) {
	nan, inf := nanValue(), 1/zero()
	c := Line("loss", Axes{X: "step"}, Series{Name: "a", Y: []float64{1, nan, inf}})
	snip := c.RenderSnippet()
	if !strings.Contains(snip.Option, `[1,"-"]`) || !strings.Contains(snip.Option, `[2,"-"]`) {
		t.Errorf("NaN/Inf not turned into gaps: %s", snip.Option)
	}
	if _, err := needsFull(c); err != nil {
		t.Errorf("options with gaps do not encode: %v", err)
	}
	h := Heatmap("h", []string{"a", "b"}, []string{"r"}, [][]float64{{nan, 0.123456}})
	if o := h.RenderSnippet().Option; !strings.Contains(o, `[0,0,"-"]`) || !strings.Contains(o, `[1,0,0.1235]`) {
		t.Errorf("heatmap values: %s", o)
	}
	// A chart built by hand with a NaN is reported, not drawn empty.
	raw := charts.NewLine()
	raw.AddSeries("x", []opts.LineData{{Value: nan}})
	raw.RenderSnippet()
	if _, err := needsFull(raw); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("hand-made chart with NaN: err = %v", err)
	}
}

func zero() float64 { return 0 }

func TestLineSeriesX(t *testing.T) {
	c := Line("loss", Axes{X: "step"}, Series{Name: "eval", X: []float64{10, 20}, Y: []float64{0.5, 0.4, 0.3}})
	o := c.RenderSnippet().Option
	if !strings.Contains(o, `[{"value":[10,0.5]},{"value":[20,0.4]}]`) {
		t.Errorf("points beyond len(X) should be dropped: %s", o)
	}
}

func TestEscapeScript(t *testing.T) {
	in := `var s = "</script><script>x()</SCRIPT>"; var c = "<!--";`
	got := escapeScript(in)
	if strings.Contains(strings.ToLower(got), "</script") || strings.Contains(got, "<!--") {
		t.Errorf("escapeScript(%q) = %q", in, got)
	}
	if want := `var s = "<\/script><script>x()<\/SCRIPT>"; var c = "<\!--";`; got != want {
		t.Errorf("escapeScript(%q) = %q, want %q", in, got, want)
	}
}

// The chart markup: no go-echarts "container" class (it collides with Bootstrap's in the classic
// Notebook), a block-scoped script, and no CDN asset.
func TestSnippetMarkup(t *testing.T) {
	c := Bar("b", Axes{}, []string{"a"}, Series{Name: "s", Y: []float64{1}})
	s, full, err := snippet(c)
	if err != nil || full {
		t.Fatalf("snippet: full=%v err=%v", full, err)
	}
	if strings.Contains(s, "container") {
		t.Errorf("the chart markup uses the container class:\n%s", s)
	}
	// The div holds the static picture (an SVG data URL, nothing fetched), then the script.
	s = stripStatic(t, s)
	if !strings.HasPrefix(s, `<div id="`+chartID(t, c)+`" style="width:800px;height:400px;"></div>`+"\n<script>\n{\n") {
		t.Errorf("unexpected start of the chart markup:\n%.200s", s)
	}
	if strings.Contains(s, "http") || strings.Contains(s, "src=") {
		t.Errorf("the chart markup references a URL:\n%s", s)
	}
	if _, err := HTML(); err == nil {
		t.Error("HTML() with no chart: want an error")
	}
	if _, err := HTML(nil); err == nil {
		t.Error("HTML(nil): want an error")
	}
}
