package lab

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// The explorer's view: one HTML block, controls on the left (live) or the selection (static),
// the selected point on the right. Its root carries the displayed state as data attributes
// (data-point, data-state, data-run, data-score...), which tests and scripts read.

// viewMode says what the view is for.
type viewMode struct {
	live    bool   // with controls, served by a running cell
	id      string // the root element's id (unique per render)
	address string // where the page's controls send (live)
	seq     int    // the render's number (live): the page says hello on the first
	reason  string // why the view is static
}

// Chart sizes in the explorer, smaller than nbui's so that two fit side by side.
const (
	exploreChartWidth  = 400
	exploreChartHeight = 320
)

// sized sets a chart's size (nbui's charts are 800 pixels wide).
func sized(c *charts.RectChart, w, h int) {
	c.SetGlobalOptions(charts.WithInitializationOpts(opts.Initialization{Width: fmt.Sprintf("%dpx", w), Height: fmt.Sprintf("%dpx", h)}))
}

// html renders the explorer's view.
func (x *explorer) html(m viewMode) string {
	p := x.selected()
	g := x.grids[x.cur]
	var b strings.Builder
	attr := func(k, v string) { fmt.Fprintf(&b, ` data-%s="%s"`, k, html.EscapeString(v)) }
	fmt.Fprintf(&b, `<div id="%s" class="peftlab-explorer"`, html.EscapeString(m.id))
	attr("peftlab-explorer", map[bool]string{true: "live", false: "static"}[m.live])
	attr("grid", g.g.Name)
	attr("grid-index", strconv.Itoa(x.cur))
	attr("point", pointKey(p.labels))
	attr("state", string(p.state))
	if x.status != "" {
		attr("status", x.status)
	}
	if p.state == pointStored || p.state == pointFailed {
		attr("run", p.sum.ID)
	}
	if v, ok := p.sum.Scores[SplitTest]; ok && p.state == pointStored {
		attr("score", strconv.FormatFloat(v, 'g', -1, 64))
		attr("metric", p.sum.Metric)
	}
	if q := x.pinned(); q != nil {
		attr("pinned", pointKey(q.labels))
	}
	if m.live {
		attr("address", m.address)
		attr("seq", strconv.Itoa(m.seq))
	}
	b.WriteString(` style="font-family:sans-serif;font-size:13px;line-height:1.4">`)
	b.WriteString(`<div style="display:flex;gap:18px;align-items:flex-start;flex-wrap:wrap">`)
	b.WriteString(`<div class="peftlab-explorer-controls" style="flex:0 0 210px;border-right:1px solid #ddd;padding-right:12px">`)
	if m.live {
		x.controlsHTML(&b, p)
	} else {
		x.selectionHTML(&b, p, m.reason)
	}
	b.WriteString(`</div><div class="peftlab-explorer-view" style="flex:1 1 480px;min-width:0;overflow-x:auto">`)
	x.viewHTML(&b, p, m.live)
	b.WriteString("</div></div></div>\n")
	if m.live {
		b.WriteString(liveScript(m))
	}
	return b.String()
}

// controlsHTML writes the live controls: a grid select (with several grids), a slider over
// the ranks, a select for each other axis, and the buttons.
func (x *explorer) controlsHTML(b *strings.Builder, p *xpoint) {
	g := x.grids[x.cur]
	disabled := ""
	if x.status != "" {
		disabled = " disabled"
	}
	row := func(label, control string) {
		fmt.Fprintf(b, `<div style="margin:6px 0"><label style="display:block;color:#555">%s</label>%s</div>`, label, control)
	}
	if len(x.grids) > 1 {
		var o strings.Builder
		fmt.Fprintf(&o, `<select data-pe-grid style="width:100%%"%s>`, disabled)
		for i, xg := range x.grids {
			fmt.Fprintf(&o, `<option value="%d"%s>%s</option>`, i, selectedAttr(i == x.cur), html.EscapeString(xg.g.Name))
		}
		o.WriteString(`</select>`)
		row("grid", o.String())
	}
	for a, axis := range g.g.Axes {
		var c strings.Builder
		name := html.EscapeString(axis.Name)
		if axis.Name == "rank" && len(axis.Labels) > 1 {
			labels, _ := json.Marshal(axis.Labels)
			fmt.Fprintf(&c, `<input type="range" data-pe-axis="%s" data-pe-labels="%s" min="0" max="%d" step="1" value="%d" style="width:150px;vertical-align:middle"%s> <output style="font-weight:bold">%s</output>`,
				name, html.EscapeString(string(labels)), len(axis.Labels)-1, g.sel[a], disabled, html.EscapeString(axis.Labels[g.sel[a]]))
		} else {
			fmt.Fprintf(&c, `<select data-pe-axis="%s" style="width:100%%"%s>`, name, disabled)
			for i, l := range axis.Labels {
				fmt.Fprintf(&c, `<option value="%d"%s>%s</option>`, i, selectedAttr(i == g.sel[a]), html.EscapeString(l))
			}
			c.WriteString(`</select>`)
		}
		row(name, c.String())
	}
	b.WriteString(`<div style="margin-top:12px;display:flex;flex-wrap:wrap;gap:6px">`)
	button := func(op, label string, enabled bool, title string) {
		d := disabled
		if !enabled {
			d = " disabled"
		}
		fmt.Fprintf(b, `<button type="button" data-pe-op="%s" title="%s"%s>%s</button>`, op, html.EscapeString(title), d, html.EscapeString(label))
	}
	button("train", "Train", p.state == pointMissing, "train this point (it is stored and joins the chart)")
	if x.pin == nil {
		button("pin", "Pin", p.state == pointStored, "pin this point, then select another to compare them")
	} else {
		button("unpin", "Unpin", true, "stop comparing")
	}
	button("close", "Close", true, "end the explorer, leaving its view in the cell")
	b.WriteString(`</div>`)
	status := "changing a control shows the stored run at once"
	switch {
	case x.status == "training":
		status = "training: see the progress below; the controls come back when it is done"
	case x.pin != nil:
		status = "comparing with the pinned point: " + pointKey(x.pinned().labels)
	}
	fmt.Fprintf(b, `<p class="peftlab-explorer-status" style="color:#666;margin:8px 0 0">%s</p>`, html.EscapeString(status))
	fmt.Fprintf(b, `<p style="color:#888;font-size:11px;margin:6px 0 0">the cell serves this explorer until Close (idle limit %s)</p>`, html.EscapeString(x.idleText()))
}

// idleText describes the idle limit.
func (x *explorer) idleText() string {
	switch {
	case x.e.Idle < 0:
		return "none"
	case x.e.Idle == 0:
		return DefaultIdle.String()
	}
	return x.e.Idle.String()
}

func selectedAttr(on bool) string {
	if on {
		return " selected"
	}
	return ""
}

// selectionHTML writes the static view's left column: why it is static, and the selection.
func (x *explorer) selectionHTML(b *strings.Builder, p *xpoint, reason string) {
	g := x.grids[x.cur]
	fmt.Fprintf(b, `<p style="margin:0 0 6px"><b>explorer</b> <span style="color:#888">(static view)</span></p>`)
	var rows [][]string
	if len(x.grids) > 1 {
		rows = append(rows, []string{"grid", g.g.Name})
	}
	for _, a := range g.g.Axes {
		rows = append(rows, []string{a.Name, p.labels[a.Name]})
	}
	b.WriteString(nbui.TableHTML([]string{"axis", "value"}, rows))
	fmt.Fprintf(b, `<p class="peftlab-explorer-status" style="color:#666;margin:8px 0 0">%s</p>`, html.EscapeString(reason))
}

// viewHTML writes the selected point: its state, scores, plan row, curves, Pareto chart, and
// its examples or the comparison with the pinned point.
func (x *explorer) viewHTML(b *strings.Builder, p *xpoint, live bool) {
	g := x.grids[x.cur]
	fmt.Fprintf(b, `<div style="font-size:15px;margin-bottom:4px"><b>%s</b> <span style="color:#666">%s on %s</span></div>`,
		html.EscapeString(pointKey(p.labels)), html.EscapeString(p.x.Task), html.EscapeString(p.x.Base))
	if x.note != "" {
		fmt.Fprintf(b, `<p style="color:#b00020;margin:4px 0">%s</p>`, html.EscapeString(x.note))
	}
	var run *Run
	switch p.state {
	case pointStored, pointFailed:
		r, err := g.run(p)
		if err != nil {
			fmt.Fprintf(b, `<p style="color:#b00020">reading the run: %s</p>`, html.EscapeString(err.Error()))
			break
		}
		run = &r
		when := ""
		if r.Record != nil && !r.Record.Finished.IsZero() {
			when = ", trained " + r.Record.Finished.Local().Format("2006-01-02 15:04")
		}
		fmt.Fprintf(b, `<p style="margin:2px 0;color:#444">from the store: run <code class="peftlab-explorer-run">%s</code>%s</p>`, html.EscapeString(r.ID), html.EscapeString(when))
		if p.state == pointFailed {
			fmt.Fprintf(b, `<p style="color:#b00020">the run failed: %s</p>`, html.EscapeString(p.why))
		}
	case pointMissing:
		how := "run its grid, or press Train in the live explorer"
		if live {
			how = "press Train to train it here (or run its grid)"
		}
		fmt.Fprintf(b, `<p style="margin:2px 0;color:#8a5a00"><b>not in the store</b>: %s; %s.</p>`, html.EscapeString(p.why), how)
	case pointBusy:
		fmt.Fprintf(b, `<p style="margin:2px 0;color:#8a5a00"><b>being trained</b>: %s. Select it again once it is done.</p>`, html.EscapeString(p.why))
	case pointInvalid:
		fmt.Fprintf(b, `<p style="margin:2px 0;color:#b00020"><b>not a valid point</b>: %s</p>`, html.EscapeString(p.why))
	}
	if p.state == pointStored {
		x.scoreHTML(b, p)
	}
	if p.state != pointInvalid {
		plan := p.sum.Plan
		if len(plan) == 0 {
			row, err := x.planRow(g.store, p.x)
			if err != nil {
				fmt.Fprintf(b, `<p style="color:#b00020">plan: %s</p>`, html.EscapeString(err.Error()))
			}
			plan = row
		}
		if len(plan) > 0 {
			b.WriteString(`<div style="margin:6px 0">`)
			b.WriteString(nbui.TableHTML(PlanHeader, [][]string{plan}))
			b.WriteString(`</div>`)
		}
	}
	pin := x.pinned()
	comparing := pin != nil && !(pin.sel.grid == p.sel.grid && slices.Equal(pin.sel.idx, p.sel.idx))
	var pinRun *Run
	if comparing && pin.state == pointStored {
		if r, err := x.grids[pin.sel.grid].run(pin); err == nil {
			pinRun = &r
		}
	}
	if comparing {
		x.compareTableHTML(b, pin, p)
	}
	// The charts: curves (both runs when comparing) and the Pareto chart.
	var chartList []nbui.Chart
	var curves []Run
	if pinRun != nil {
		r := *pinRun
		r.Name = "pinned" // the table above names both points
		curves = append(curves, r)
	}
	if run != nil && run.Record != nil {
		r := *run
		r.Name = pointKey(p.labels)
		if pinRun != nil {
			r.Name = "selected"
		}
		curves = append(curves, r)
	}
	if len(curves) > 0 && slices.ContainsFunc(curves, func(r Run) bool { return r.Record != nil }) {
		c := Curves("training and validation loss", curves...)
		sized(&c.RectChart, exploreChartWidth, exploreChartHeight)
		chartList = append(chartList, c)
	}
	sums, err := x.paretoSummaries(p)
	if err != nil {
		fmt.Fprintf(b, `<p style="color:#b00020">the store: %s</p>`, html.EscapeString(err.Error()))
	}
	caption := ""
	if len(sums) > 0 {
		c, text := x.pareto(p, pin, sums)
		chartList = append(chartList, c)
		caption = text
	} else {
		caption = fmt.Sprintf("no run of %s on %s in the store has a test score yet: the Pareto chart is empty", p.x.Task, p.x.Base)
	}
	if len(chartList) > 0 {
		snips, err := nbui.Snippets(chartList...)
		if err != nil {
			fmt.Fprintf(b, `<p style="color:#b00020">charts: %s</p>`, html.EscapeString(err.Error()))
		} else {
			b.WriteString(`<div style="display:flex;flex-wrap:wrap;gap:8px;margin:8px 0">`)
			b.WriteString(snips)
			b.WriteString(`</div>`)
		}
	}
	fmt.Fprintf(b, `<p class="peftlab-explorer-pareto" style="color:#444;margin:2px 0 8px">%s</p>`, html.EscapeString(caption))
	if comparing && pinRun != nil && run != nil {
		x.diffHTML(b, pinRun, run, pin, p)
	} else if run != nil && run.State == Done {
		x.examplesHTML(b, run)
	}
}

// scoreHTML writes the point's scores, learning rate and size.
func (x *explorer) scoreHTML(b *strings.Builder, p *xpoint) {
	s := p.sum
	metric := s.Metric
	fmt.Fprintf(b, `<div style="margin:6px 0"><span style="font-size:22px;font-weight:bold" class="peftlab-explorer-score">%s</span> <span style="color:#666">test %s</span>`,
		html.EscapeString(FormatScore(metric, s.Scores[SplitTest])), html.EscapeString(metric))
	if v, ok := s.Scores[SplitValidation]; ok {
		fmt.Fprintf(b, ` · validation %s`, html.EscapeString(FormatScore(metric, v)))
	}
	fmt.Fprintf(b, ` · %d trainable`, s.Trainable)
	if s.StepSeconds > 0 {
		fmt.Fprintf(b, ` · %s a step`, html.EscapeString(formatSeconds(s.StepSeconds)))
	}
	if len(p.sweep) > 0 {
		var others []string
		for _, r := range p.sweep {
			if r.LR == p.lr {
				continue
			}
			if r.State == Failed {
				others = append(others, fmtLR(r.LR)+" (failed)")
				continue
			}
			others = append(others, fmt.Sprintf("%s (validation %s)", fmtLR(r.LR), FormatScore(metric, r.Scores[SplitValidation])))
		}
		fmt.Fprintf(b, `<br><span style="color:#666">learning rate %s, chosen on validation over %s</span>`,
			html.EscapeString(fmtLR(p.lr)), html.EscapeString(strings.Join(others, ", ")))
	} else if s.LR > 0 {
		fmt.Fprintf(b, ` · learning rate %s`, html.EscapeString(fmtLR(s.LR)))
	}
	b.WriteString(`</div>`)
}

// pareto draws the Pareto chart of sums with the selected (and the pinned) configuration
// ringed, and says where the selected one stands.
func (x *explorer) pareto(p, pin *xpoint, sums []Summary) (nbui.Chart, string) {
	c := ParetoChart("stored runs of "+p.x.Task, sums)
	sized(&c.RectChart, exploreChartWidth, exploreChartHeight)
	pts := Pareto(sums)
	metric := sums[0].Metric
	if metric == tasks.MetricAccuracy && len(c.YAxisList) > 0 {
		c.YAxisList[0].Max = 100 // ECharts' nice scale of a few points close together runs past 100%
	}
	ring := func(q *xpoint, name, color string) (ParetoPoint, bool) {
		key := x.groupKey(q)
		for _, pt := range pts {
			if pt.Key == key {
				c.AddSeries(name, []opts.ScatterData{{Value: []any{float64(max(1, pt.Trainable)), scale(metric, pt.Score.Mean)}, SymbolSize: 22}},
					charts.WithItemStyleOpts(opts.ItemStyle{Color: "rgba(0,0,0,0)", BorderColor: color, BorderWidth: 3}))
				return pt, true
			}
		}
		return ParetoPoint{}, false
	}
	if pin != nil && pin.state == pointStored {
		ring(pin, "pinned", "#555")
	}
	text := fmt.Sprintf("%d configurations of %s on %s in the store", len(pts), p.x.Task, p.x.Base)
	if p.state != pointStored {
		return c, text + "; the selected point is not among them yet"
	}
	pt, ok := ring(p, "selected", "#d62728")
	switch {
	case !ok:
		return c, text
	case pt.Front:
		text += "; the selected one (ringed) is on the Pareto front"
	default:
		text += "; the selected one (ringed) is behind the Pareto front (a smaller configuration scores as well or better)"
	}
	if pt.Score.N > 1 {
		text += fmt.Sprintf(", at its mean over %d seeds", pt.Score.N)
	}
	return c, text
}

// compareTableHTML writes the pinned and the selected point side by side.
func (x *explorer) compareTableHTML(b *strings.Builder, pin, p *xpoint) {
	row := func(name string, q *xpoint) []string {
		s := q.sum
		if q.state != pointStored {
			return []string{name, pointKey(q.labels), string(q.state), "", "", "", ""}
		}
		return []string{name, pointKey(q.labels), s.Method, fmt.Sprint(s.Trainable),
			FormatScore(s.Metric, s.Scores[SplitValidation]), FormatScore(s.Metric, s.Scores[SplitTest]), formatSeconds(s.StepSeconds)}
	}
	b.WriteString(`<div class="peftlab-explorer-compare" style="margin:8px 0"><b>compared with the pinned point</b>`)
	b.WriteString(nbui.TableHTML([]string{"", "point", "method", "trainable", "validation", "test", "step time"},
		[][]string{row("pinned", pin), row("selected", p)}))
	b.WriteString(`</div>`)
}

// examplesHTML writes the first test examples with the run's answers.
func (x *explorer) examplesHTML(b *strings.Builder, r *Run) {
	g := x.grids[x.cur]
	answers, err := r.Answers(SplitTest)
	if err != nil {
		fmt.Fprintf(b, `<p style="color:#b00020">%s</p>`, html.EscapeString(err.Error()))
		return
	}
	t, err := x.task(g.store, r.Experiment.Task)
	if err != nil {
		fmt.Fprintf(b, `<p style="color:#b00020">%s</p>`, html.EscapeString(err.Error()))
		return
	}
	n := min(x.e.Examples, len(answers), len(t.Test))
	if n <= 0 {
		return
	}
	h, err := t.HTML(t.Test[:n], answers[:n])
	if err != nil {
		fmt.Fprintf(b, `<p style="color:#b00020">%s</p>`, html.EscapeString(err.Error()))
		return
	}
	fmt.Fprintf(b, `<div class="peftlab-explorer-examples"><p style="margin:4px 0;color:#444">the first %d of %d test examples, with the answers the run generated</p>%s</div>`, n, len(answers), h)
}

// diffHTML writes the test examples the pinned and the selected run answer differently.
func (x *explorer) diffHTML(b *strings.Builder, a, c *Run, pa, pc *xpoint) {
	g := x.grids[x.cur]
	if a.Experiment.Task != c.Experiment.Task {
		fmt.Fprintf(b, `<p style="color:#666">the two points are on different tasks (%s, %s): no answers to compare</p>`,
			html.EscapeString(a.Experiment.Task), html.EscapeString(c.Experiment.Task))
		return
	}
	aa, err1 := a.Answers(SplitTest)
	ca, err2 := c.Answers(SplitTest)
	t, err3 := x.task(g.store, c.Experiment.Task)
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			fmt.Fprintf(b, `<p style="color:#b00020">%s</p>`, html.EscapeString(err.Error()))
			return
		}
	}
	n := min(len(aa), len(ca), len(t.Test))
	var diff []int
	for i := range n {
		if aa[i] != ca[i] {
			diff = append(diff, i)
		}
	}
	fmt.Fprintf(b, `<div class="peftlab-explorer-diff" data-differ="%d" data-of="%d"><p style="margin:4px 0;color:#444"><b>%d of %d test answers differ</b>`, len(diff), n, len(diff), n)
	shown := diff[:min(len(diff), 2*x.e.Examples)]
	if len(shown) < len(diff) {
		fmt.Fprintf(b, ` (the first %d shown)`, len(shown))
	}
	b.WriteString(`</p>`)
	if len(shown) == 0 {
		b.WriteString(`</div>`)
		return
	}
	cell := `<td style="border-top:1px solid #ddd;padding:4px;vertical-align:top;text-align:left">`
	b.WriteString(`<table style="border-collapse:collapse;font-size:13px"><tr>`)
	if t.Multimodal() {
		b.WriteString(`<th>image</th>`)
	}
	fmt.Fprintf(b, `<th style="text-align:left">prompt</th><th style="text-align:left">answer</th><th style="text-align:left">pinned: %s</th><th style="text-align:left">selected: %s</th></tr>`,
		html.EscapeString(pointKey(pa.labels)), html.EscapeString(pointKey(pc.labels)))
	for _, i := range shown {
		e := t.Test[i]
		b.WriteString("<tr>")
		if t.Multimodal() {
			b.WriteString(cell)
			if img, err := exampleImage(t, e); err == nil && img != "" {
				b.WriteString(img)
			}
			b.WriteString("</td>")
		}
		prompt := e.Prompt
		if len(prompt) > 200 {
			prompt = prompt[:200] + " …"
		}
		fmt.Fprintf(b, "%s%s</td>%s%s</td>", cell, html.EscapeString(prompt), cell, html.EscapeString(e.Target))
		for _, ans := range []string{aa[i], ca[i]} {
			color := "#a00"
			if t.Kind == tasks.Classification && t.ClassOf(ans) == e.Label {
				color = "#070"
			}
			fmt.Fprintf(b, `%s<span style="color:%s">%s</span></td>`, cell, color, html.EscapeString(ans))
		}
		b.WriteString("</tr>")
	}
	b.WriteString("</table></div>")
}

// exampleImage is an example's image as an inline PNG.
func exampleImage(t *tasks.Task, e tasks.Example) (string, error) {
	if !e.HasImage() {
		return "", nil
	}
	px, err := e.Image()
	if err != nil {
		return "", err
	}
	png, err := tasks.PNG(px, t.ImageSize, t.Channels)
	if err != nil {
		return "", err
	}
	return `<img width="56" height="56" style="image-rendering:pixelated" src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(png) + `">`, nil
}

// text writes the static view as text (outside a notebook).
func (x *explorer) text(w io.Writer, reason string) {
	p := x.selected()
	g := x.grids[x.cur]
	fmt.Fprintf(w, "explorer: %s, %s (%s on %s) — %s\n", g.g.Name, pointKey(p.labels), p.x.Task, p.x.Base, reason)
	switch p.state {
	case pointStored:
		s := p.sum
		fmt.Fprintf(w, "  from the store: run %s, test %s %s, validation %s, %d trainable\n", s.ID, s.Metric,
			FormatScore(s.Metric, s.Scores[SplitTest]), FormatScore(s.Metric, s.Scores[SplitValidation]), s.Trainable)
	case pointFailed:
		fmt.Fprintf(w, "  run %s failed: %s\n", p.sum.ID, p.why)
	default:
		fmt.Fprintf(w, "  %s: %s\n", p.state, p.why)
	}
	sums, err := x.paretoSummaries(p)
	if err != nil {
		fmt.Fprintf(w, "  the store: %v\n", err)
		return
	}
	pts := Pareto(sums)
	key := x.groupKey(p)
	var rows [][]string
	for _, pt := range pts {
		mark := ""
		if pt.Key == key {
			mark = "← selected"
		}
		front := ""
		if pt.Front {
			front = "front"
		}
		rows = append(rows, []string{pt.Key, pt.Method, fmt.Sprint(pt.Trainable), FormatStat(sums[0].Metric, pt.Score), front, mark})
	}
	fmt.Fprintf(w, "  %d configurations of %s on %s in the store (test score against trainable parameters):\n", len(pts), p.x.Task, p.x.Base)
	if len(rows) > 0 {
		nbui.WriteTableText(w, []string{"configuration", "method", "trainable", "test", "pareto", ""}, rows)
	}
}
