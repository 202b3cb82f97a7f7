package nbui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/labdir"
)

// fakeECharts installs stand-ins for both ECharts builds, stamped as a complete install.
func fakeECharts(t *testing.T) {
	t.Helper()
	t.Setenv(labdir.EnvAssets, t.TempDir())
	dir := EChartsDir()
	if err := os.MkdirAll(filepath.Join(dir, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, js := range map[string]string{commonScript: "window.echarts = {common: 1};", fullScript: "window.echarts = {full: 1};"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(js), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ".peftlab-stamp"), []byte(echartsPackage.Stamp()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Script and Snippets split HTML in two: the script once, the charts in every update.
func TestScriptAndSnippetsMakeHTML(t *testing.T) {
	fakeECharts(t)
	line := Line("loss", Axes{X: "step"}, Series{Name: "train", Y: []float64{1, 2}})
	heat := Heatmap("h", []string{"a"}, []string{"b"}, [][]float64{{1}})
	for name, c := range map[string]Chart{"line": line, "heatmap": heat} {
		script, err := Script(c)
		if err != nil {
			t.Fatal(err)
		}
		snips, err := Snippets(c)
		if err != nil {
			t.Fatal(err)
		}
		whole, err := HTML(c)
		if err != nil {
			t.Fatal(err)
		}
		if script+snips != whole {
			t.Errorf("%s: Script + Snippets differ from HTML", name)
		}
		if strings.Contains(snips, "window.echarts = {") {
			t.Errorf("%s: the snippets carry the ECharts script", name)
		}
		if !strings.Contains(snips, `const el = document.getElementById(`) || !strings.Contains(snips, `class="`+staticClass+`"`) {
			t.Errorf("%s: the snippets lack the chart's div or its static picture", name)
		}
	}
	if s, _ := Script(heat); !strings.Contains(s, "{full: 1}") {
		t.Error("a heatmap's script is not the full build")
	}
	if s, _ := Script(); !strings.Contains(s, "{common: 1}") {
		t.Error("Script() is not the common build")
	}
	if _, err := Snippets(); err == nil {
		t.Error("Snippets() without charts: no error")
	}
}
