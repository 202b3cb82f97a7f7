package nbui

import (
	"encoding/json"
	"fmt"
	"html"
	"regexp"
	"strings"
	"sync"

	"github.com/go-echarts/go-echarts/v2/render"
	"github.com/janpfeifer/gonb/gonbui"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/internal/catch"
)

// Chart is any go-echarts chart: those Line, Bar and Heatmap return, or one built with go-echarts
// directly (charts.NewPie(), ...). Customize them with SetGlobalOptions before showing them.
type Chart interface {
	RenderSnippet() render.ChartSnippet
}

// Show displays the charts in the current notebook cell, with the ECharts script inlined. The
// script is inlined once per cell execution (GoNB runs each cell as a new program), so every
// cell's output is self-contained: it renders after a page reload, in a saved notebook and in an
// HTML export, whatever happened to other cells. Re-running the cell is safe.
//
// Outside a notebook Show does nothing and returns nil. In a notebook, an error (most likely the
// script is not installed: run `go run ./kernel install`) is also shown in the cell output.
func Show(charts ...Chart) error {
	if !gonbui.IsNotebook {
		return nil
	}
	err := show(charts)
	if err != nil {
		gonbui.DisplayHTML(`<pre style="color:#b00020;white-space:pre-wrap">nbui: ` + html.EscapeString(err.Error()) + `</pre>`)
	}
	gonbui.Sync() // the last display messages can be lost when the cell program exits
	return err
}

// shown records which ECharts builds this process already sent to the page.
var shown struct {
	sync.Mutex
	common, full bool
}

func show(charts []Chart) error {
	snips, needFull, err := snippets(charts)
	if err != nil {
		return err
	}
	shown.Lock()
	defer shown.Unlock()
	var b strings.Builder
	switch {
	case shown.full, shown.common && !needFull:
		// The page already has what these charts need.
	default:
		if err := writeBundle(&b, needFull); err != nil {
			return err
		}
	}
	for _, s := range snips {
		b.WriteString(s)
	}
	gonbui.DisplayHTML(b.String())
	shown.full = shown.full || needFull
	shown.common = true
	return nil
}

// HTML returns a self-contained HTML fragment that shows the charts: the ECharts script inline,
// then each chart. It loads nothing from the network.
func HTML(charts ...Chart) (string, error) {
	snips, needFull, err := snippets(charts)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := writeBundle(&b, needFull); err != nil {
		return "", err
	}
	for _, s := range snips {
		b.WriteString(s)
	}
	return b.String(), nil
}

// Page returns a standalone HTML document with the charts, for saving reports and for tests.
func Page(title string, charts ...Chart) (string, error) {
	frag, err := HTML(charts...)
	if err != nil {
		return "", err
	}
	return "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>" + html.EscapeString(title) +
		"</title>\n</head>\n<body>\n" + frag + "\n</body>\n</html>\n", nil
}

// WriteHTML writes Page(title, charts...) to path atomically (a temporary file renamed into
// place), so a reader never sees half a report.
func WriteHTML(path, title string, charts ...Chart) error {
	page, err := Page(title, charts...)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, []byte(page))
}

// writeBundle writes the ECharts script (the full build if full, else the common one) as an
// inline <script>. The bundle is evaluated only if the page does not have it yet, and with the
// AMD `define` (and CommonJS `exports`/`module`) hidden: the classic Notebook loads RequireJS,
// and the bundle would register itself as an anonymous AMD module instead of setting the global
// `echarts` the charts use.
func writeBundle(b *strings.Builder, full bool) error {
	name, cond := commonScript, `typeof window.echarts === "undefined"`
	if full {
		name, cond = fullScript, `typeof window.echarts === "undefined" || !window.__nbuiEChartsFull`
	}
	src, err := loadScript(name)
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "<script>\nif (%s) {\n(function (define, exports, module) {\n", cond)
	b.WriteString(escapeScript(src))
	// The newline ends a possible trailing line comment of the bundle.
	b.WriteString("\n}).call(window);\n")
	if full {
		b.WriteString("window.__nbuiEChartsFull = true;\n")
	}
	b.WriteString("}\n</script>\n")
	return nil
}

var (
	reID     = regexp.MustCompile(`\bid="([^"]+)"`)
	reStyle  = regexp.MustCompile(`\bstyle="([^"]*)"`)
	scriptOn = `<script type="text/javascript">`
)

// snippets renders each chart to its <div> and a <script> that draws into it. It also says
// whether any chart needs the full ECharts build.
func snippets(charts []Chart) (out []string, needFull bool, err error) {
	if len(charts) == 0 {
		return nil, false, fmt.Errorf("nbui: no chart to show")
	}
	for i, c := range charts {
		if c == nil {
			return nil, false, fmt.Errorf("nbui: chart %d is nil", i)
		}
		s, full, err := snippet(c)
		if err != nil {
			return nil, false, fmt.Errorf("nbui: chart %d: %w", i, err)
		}
		out = append(out, s)
		needFull = needFull || full
	}
	return out, needFull, nil
}

func snippet(c Chart) (s string, full bool, err error) {
	var sn render.ChartSnippet
	// go-echarts panics on template errors.
	if err := catch.Error(func() error { sn = c.RenderSnippet(); return nil }); err != nil {
		return "", false, fmt.Errorf("go-echarts could not render the chart: %w", err)
	}
	full, err = needsFull(c)
	if err != nil {
		return "", false, err
	}
	id := reID.FindStringSubmatch(sn.Element)
	style := reStyle.FindStringSubmatch(sn.Element)
	body := strings.TrimSpace(sn.Script)
	if id == nil || style == nil || !strings.HasPrefix(body, scriptOn) || !strings.HasSuffix(body, "</script>") {
		return "", false, fmt.Errorf("unexpected go-echarts snippet (a go-echarts version other than v2.6.7?)")
	}
	body = strings.TrimSuffix(strings.TrimPrefix(body, scriptOn), "</script>")
	// The div gets no class: go-echarts' "container" class collides with Bootstrap's in the
	// classic Notebook. It holds the chart's static picture (see static.go), which the script
	// replaces with the live chart. The script runs in a block, so re-running it (same page,
	// same chart id) does not redeclare its `let` variables; a failure is written into the
	// chart's div instead of leaving an empty box.
	var b strings.Builder
	fmt.Fprintf(&b, "<div id=\"%s\" style=\"%s\">%s</div>\n<script>\n{\nconst el = document.getElementById(\"%s\");\n",
		id[1], style[1], staticContent(c, style[1]), id[1])
	b.WriteString("try {\nif (typeof window.echarts === \"undefined\") { throw new Error(\"the ECharts script did not load\"); }\n")
	b.WriteString("el.textContent = \"\";\n")
	b.WriteString(escapeScript(body))
	b.WriteString("\nel.setAttribute(\"data-nbui-chart\", \"rendered\");\n} catch (err) {\n")
	b.WriteString("if (el) { el.setAttribute(\"data-nbui-chart\", \"failed\"); el.style.height = \"auto\"; el.textContent = \"nbui: the chart failed to render: \" + err; }\n")
	b.WriteString("}\n}\n</script>\n")
	return b.String(), full, nil
}

// escapeScript keeps script text from ending its <script> element early: "</script" and "<!--"
// are rewritten with a backslash, which means the same inside JavaScript strings and regexps
// (the only places they can occur in valid code).
func escapeScript(js string) string {
	if !strings.Contains(js, "</") && !strings.Contains(js, "<!--") {
		return js
	}
	js = reEndScript.ReplaceAllStringFunc(js, func(m string) string { return `<\/` + m[2:] })
	return strings.ReplaceAll(js, "<!--", `<\!--`)
}

var reEndScript = regexp.MustCompile(`(?i)</script`)

// Series types and top-level options the common ECharts build supports; anything else makes a
// chart use the full build.
var (
	commonSeries  = map[string]bool{"line": true, "bar": true, "pie": true, "scatter": true}
	commonOptions = map[string]bool{
		"title": true, "legend": true, "tooltip": true, "series": true, "xAxis": true, "yAxis": true,
		"grid": true, "toolbox": true, "dataZoom": true, "dataset": true, "color": true,
		"backgroundColor": true, "animation": true, "progressive": true, "progressiveThreshold": true,
		"axisPointer": true, "textStyle": true,
	}
)

// needsFull tells whether the chart uses series or components missing from the common build.
// Charts whose options cannot be inspected get the full build, which has everything.
func needsFull(c Chart) (bool, error) {
	j, ok := c.(interface{ JSON() map[string]any })
	if !ok {
		return true, nil
	}
	opt := j.JSON()
	raw, err := json.Marshal(opt)
	if err != nil {
		return false, fmt.Errorf("chart options cannot be encoded (NaN or Inf values? use \"-\" for a missing point): %w", err)
	}
	for k, v := range opt {
		if v != nil && !commonOptions[k] {
			return true, nil
		}
	}
	var o struct {
		Series []struct {
			Type string `json:"type"`
		} `json:"series"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		return true, nil
	}
	for _, s := range o.Series {
		if !commonSeries[s.Type] {
			return true, nil
		}
	}
	return false, nil
}
