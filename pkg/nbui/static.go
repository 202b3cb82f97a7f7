package nbui

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// A static picture of each chart goes inside the chart's div, for the places that show a saved
// notebook without running its scripts: JupyterLab and the classic Notebook for an untrusted
// notebook (one they did not save themselves, such as an executed notebook from `kernel exec`
// or one from someone else), GitHub's and other viewers. There the div is left with the picture,
// an <img> with an SVG data URL, which their HTML sanitizers keep (JupyterLab's drops inline
// <svg> and ids, keeps <img src="data:...">). Where scripts run, the chart's script replaces the
// picture with the live ECharts chart.
//
// The picture is drawn here, in Go, from the chart's ECharts options: line, scatter, bar and
// heatmap series on value, log or category axes, with the title, axis names and legend: what
// nbui's Line, Scatter, Bar and (Labeled)Heatmap build. Charts with other series (a go-echarts
// pie...) get no picture; the div then says in words that it holds a chart drawn by a script.

// staticClass marks the static picture (a class: sanitizers drop data-* attributes).
const staticClass = "nbui-static"

// palette is ECharts' default series colours, used when the options name none.
var palette = []string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"}

type sOptions struct {
	Color  []string `json:"color"`
	Title  sTitle   `json:"title"`
	Legend struct {
		Show *bool `json:"show"`
	} `json:"legend"`
	Grid      []map[string]any `json:"grid"`
	XAxis     []sAxis          `json:"xAxis"`
	YAxis     []sAxis          `json:"yAxis"`
	Series    []sSeries        `json:"series"`
	VisualMap []struct {
		Min     float64 `json:"min"`
		Max     float64 `json:"max"`
		InRange struct {
			Color []string `json:"color"`
		} `json:"inRange"`
		Text []string `json:"text"`
	} `json:"visualMap"`
}

// sTitle is ECharts' title: one object (go-echarts) or a list of them.
type sTitle struct{ Text string }

func (t *sTitle) UnmarshalJSON(b []byte) error {
	var one struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &one); err == nil {
		t.Text = one.Text
		return nil
	}
	var many []struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	if len(many) > 0 {
		t.Text = many[0].Text
	}
	return nil
}

type sAxis struct {
	Type    string `json:"type"`
	Name    string `json:"name"`
	Data    []any  `json:"data"`
	Inverse bool   `json:"inverse"`
	Min     any    `json:"min"`
	Max     any    `json:"max"`
	Scale   bool   `json:"scale"`
}

type sSeries struct {
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Data       []json.RawMessage `json:"data"`
	ShowSymbol *bool             `json:"showSymbol"`
	Label      struct {
		Show      bool   `json:"show"`
		Formatter string `json:"formatter"`
	} `json:"label"`
}

// values decodes one data item: a number, "-", [x, y, ...] or {"value": ...}. A missing value
// ("-", null) is NaN; a string that is not a number (a heatmap cell label) is kept in labels.
func itemValues(raw json.RawMessage) (vals []float64, labels []string) {
	var obj struct {
		Value json.RawMessage `json:"value"`
	}
	if len(raw) > 0 && raw[0] == '{' {
		if json.Unmarshal(raw, &obj) != nil || obj.Value == nil {
			return []float64{math.NaN()}, nil
		}
		raw = obj.Value
	}
	var list []any
	if len(raw) > 0 && raw[0] == '[' {
		if json.Unmarshal(raw, &list) != nil {
			return nil, nil
		}
	} else {
		var one any
		if json.Unmarshal(raw, &one) != nil {
			return nil, nil
		}
		list = []any{one}
	}
	for _, v := range list {
		switch v := v.(type) {
		case float64:
			vals = append(vals, v)
			labels = append(labels, "")
		case string:
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				f = math.NaN()
			}
			vals = append(vals, f)
			labels = append(labels, v)
		default:
			vals = append(vals, math.NaN())
			labels = append(labels, "")
		}
	}
	return vals, labels
}

// scale maps data values to pixels along one axis.
type scale struct {
	kind       string // "value", "log", "category"
	lo, hi     float64
	cats       []string
	from, to   float64 // pixels of lo and hi (to < from for a y axis)
	ticks      []float64
	tickLabels []string
}

func (s *scale) pos(v float64) float64 {
	switch s.kind {
	case "category":
		n := float64(max(1, len(s.cats)))
		return s.from + (v+0.5)*(s.to-s.from)/n
	case "log":
		if v <= 0 {
			return math.NaN()
		}
		return s.from + (math.Log10(v)-math.Log10(s.lo))*(s.to-s.from)/(math.Log10(s.hi)-math.Log10(s.lo))
	}
	return s.from + (v-s.lo)*(s.to-s.from)/(s.hi-s.lo)
}

// band is the pixel width of one category.
func (s *scale) band() float64 {
	return math.Abs(s.to-s.from) / float64(max(1, len(s.cats)))
}

// fit sets the range and ticks of a value or log axis over data values. exact keeps the data's
// extent (dataMin/dataMax); zero makes a linear range include 0 (bars).
func (s *scale) fit(vals []float64, exact, zero bool) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range vals {
		if !finite(v) || (s.kind == "log" && v <= 0) {
			continue
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo > hi {
		lo, hi = 0, 1
		if s.kind == "log" {
			lo, hi = 1, 10
		}
	}
	if s.kind == "log" {
		s.lo, s.hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
		if s.lo == s.hi {
			s.hi *= 10
		}
		for e := math.Round(math.Log10(s.lo)); e <= math.Round(math.Log10(s.hi)); e++ {
			s.ticks = append(s.ticks, math.Pow(10, e))
		}
		step := max(1, (len(s.ticks)+7)/8) // at most about 8 labels
		for i, t := range s.ticks {
			l := ""
			if i%step == 0 {
				l = tickLabel(t)
			}
			s.tickLabels = append(s.tickLabels, l)
		}
		return
	}
	if zero {
		lo, hi = min(lo, 0), max(hi, 0)
	}
	if lo == hi {
		lo, hi = lo-1, hi+1
	}
	step := niceStep((hi - lo) / 5)
	if exact {
		s.lo, s.hi = lo, hi
	} else {
		s.lo, s.hi = math.Floor(lo/step)*step, math.Ceil(hi/step)*step
	}
	for t := math.Ceil(s.lo/step-1e-9) * step; t <= s.hi+step*1e-9; t += step {
		s.ticks = append(s.ticks, t)
		s.tickLabels = append(s.tickLabels, tickLabel(t))
	}
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || !finite(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func tickLabel(v float64) string {
	if math.Abs(v) < 1e-12 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1e-6 && a < 1e9 {
		return strconv.FormatFloat(round4(v), 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// number reads a pixel position option ("70", 70, "10%") against a size.
func number(v any, size, def float64) float64 {
	switch v := v.(type) {
	case float64:
		return v
	case string:
		if p, ok := strings.CutSuffix(v, "%"); ok {
			if f, err := strconv.ParseFloat(p, 64); err == nil {
				return f / 100 * size
			}
		}
		if f, err := strconv.ParseFloat(strings.TrimSuffix(v, "px"), 64); err == nil {
			return f
		}
	}
	return def
}

// reSize reads a chart div's pixel width and height from its style.
var (
	reWidth  = regexp.MustCompile(`(?:^|;)\s*width:\s*(\d+)px`)
	reHeight = regexp.MustCompile(`(?:^|;)\s*height:\s*(\d+)px`)
)

// staticContent is what a chart's div holds until its script draws the chart: the static
// picture, or a sentence saying a script draws it.
func staticContent(c Chart, style string) string {
	w, h := 800, 400
	if m := reWidth.FindStringSubmatch(style); m != nil {
		w, _ = strconv.Atoi(m[1])
	}
	if m := reHeight.FindStringSubmatch(style); m != nil {
		h, _ = strconv.Atoi(m[1])
	}
	if j, ok := c.(interface{ JSON() map[string]any }); ok && w > 0 && h > 0 {
		if pic := staticPicture(j.JSON(), w, h); pic != "" {
			return pic
		}
	}
	return `<p class="` + staticClass + `" style="color:#6e7079;font-family:sans-serif;padding:1em">An interactive chart, drawn by a script: it shows where the notebook's scripts run (in Jupyter, a notebook you trust).</p>`
}

// staticPicture returns the <img> with the static picture of a chart, or "" for a chart whose
// series it cannot draw.
func staticPicture(opt map[string]any, width, height int) string {
	svg, ok := staticSVG(opt, width, height)
	if !ok {
		return ""
	}
	title := "chart"
	var o sOptions
	if raw, err := json.Marshal(opt); err == nil && json.Unmarshal(raw, &o) == nil && o.Title.Text != "" {
		title = strings.ReplaceAll(o.Title.Text, "\n", " ")
	}
	alt := title + " (a static picture: the interactive chart is drawn where the notebook's scripts run)"
	return fmt.Sprintf(`<img class="%s" alt="%s" width="%d" height="%d" src="data:image/svg+xml;base64,%s">`,
		staticClass, html.EscapeString(alt), width, height, base64.StdEncoding.EncodeToString([]byte(svg)))
}

// staticSVG draws the chart options as an SVG document of the given size. ok is false when the
// options have a series type it does not draw, or no series.
func staticSVG(opt map[string]any, width, height int) (svg string, ok bool) {
	raw, err := json.Marshal(opt)
	if err != nil {
		return "", false
	}
	var o sOptions
	if err := json.Unmarshal(raw, &o); err != nil || len(o.Series) == 0 {
		return "", false
	}
	heat := false
	for _, s := range o.Series {
		switch s.Type {
		case "line", "scatter", "bar":
		case "heatmap":
			heat = true
		default:
			return "", false
		}
	}
	if heat && len(o.Series) > 1 {
		return "", false
	}
	colors := o.Color
	if len(colors) == 0 {
		colors = palette
	}
	W, H := float64(width), float64(height)
	var grid map[string]any
	if len(o.Grid) > 0 {
		grid = o.Grid[0]
	}
	// The grid's box holds the axis labels too (containLabel): the plot is inset for them.
	left := number(grid["left"], W, 0.1*W) + 45
	right := W - number(grid["right"], W, 0.1*W)
	top := number(grid["top"], H, 60)
	bottom := H - number(grid["bottom"], H, 60) - 22
	if right-left < 50 || bottom-top < 50 {
		return "", false
	}
	var xa, ya sAxis
	if len(o.XAxis) > 0 {
		xa = o.XAxis[0]
	}
	if len(o.YAxis) > 0 {
		ya = o.YAxis[0]
	}
	xs := &scale{kind: axisKind(xa, "category"), from: left, to: right}
	ys := &scale{kind: axisKind(ya, "value"), from: bottom, to: top}
	if ya.Inverse {
		ys.from, ys.to = top, bottom
	}
	// The data: per series, the points (x, y[, v]) and labels.
	type point struct {
		x, y, v float64
		label   string
	}
	pts := make([][]point, len(o.Series))
	var xv, yv []float64
	for i, s := range o.Series {
		for j, d := range s.Data {
			vals, labels := itemValues(d)
			p := point{x: float64(j), y: math.NaN(), v: math.NaN()}
			switch {
			case len(vals) == 1:
				p.y = vals[0]
			case len(vals) >= 2:
				p.x, p.y = vals[0], vals[1]
				if len(vals) >= 3 {
					p.v = vals[2]
					p.label = tickLabel(vals[2])
					if !finite(vals[2]) {
						p.label = ""
					}
				}
				if len(labels) >= 4 && labels[3] != "" {
					p.label = labels[3]
				}
			}
			pts[i] = append(pts[i], p)
			xv, yv = append(xv, p.x), append(yv, p.y)
		}
	}
	bars := o.Series[0].Type == "bar"
	if xs.kind == "category" {
		n := len(pts[0]) // one category per bar or line point; a heatmap's come from the axis
		if heat {
			n = 0
		}
		xs.cats = axisCategories(xa, n)
		if len(xs.cats) == 0 {
			return "", false
		}
	} else {
		xs.fit(xv, xa.Min == "dataMin" || xa.Max == "dataMax", false)
	}
	if ys.kind == "category" {
		ys.cats = axisCategories(ya, 0)
		if len(ys.cats) == 0 {
			return "", false
		}
	} else {
		ys.fit(yv, false, bars || !ya.Scale)
	}

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`, width, height, width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`, width, height)
	// Title, top left, bold, one line per \n.
	for i, line := range strings.Split(o.Title.Text, "\n") {
		fmt.Fprintf(&b, `<text x="5" y="%d" font-size="18" font-weight="bold" fill="#464646">%s</text>`, 23+20*i, esc(line))
	}
	// Value axes: grid lines and labels; category axes: labels under each band.
	axisText := `font-size="12" fill="#6e7079"`
	if ys.kind != "category" {
		for i, t := range ys.ticks {
			y := ys.pos(t)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e0e6f1"/>`, left, y, right, y)
			if ys.tickLabels[i] != "" {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle" %s>%s</text>`, left-8, y, axisText, esc(ys.tickLabels[i]))
			}
		}
	} else {
		for i, c := range ys.cats {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle" %s>%s</text>`, left-8, ys.pos(float64(i)), axisText, esc(c))
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#6e7079"/>`, left, bottom, right, bottom)
	if xs.kind != "category" {
		for i, t := range xs.ticks {
			if xs.tickLabels[i] == "" {
				continue
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>%s</text>`, xs.pos(t), bottom+16, axisText, esc(xs.tickLabels[i]))
		}
	} else {
		every := max(1, int(math.Ceil(float64(len(xs.cats))*60/(right-left)))) // labels about 60px apart
		for i, c := range xs.cats {
			if i%every == 0 {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>%s</text>`, xs.pos(float64(i)), bottom+16, axisText, esc(c))
			}
		}
	}
	if xa.Name != "" {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" %s>%s</text>`, (left+right)/2, bottom+34, axisText, esc(xa.Name))
	}
	if ya.Name != "" {
		cy := (top + bottom) / 2
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" transform="rotate(-90 %.1f %.1f)" %s>%s</text>`, left-52, cy, left-52, cy, axisText, esc(ya.Name))
	}
	// The series.
	nbars := 0
	for _, s := range o.Series {
		if s.Type == "bar" {
			nbars++
		}
	}
	bar := 0
	for i, s := range o.Series {
		color := colors[i%len(colors)]
		switch s.Type {
		case "line":
			var segs [][]string
			var cur []string
			for _, p := range decimate(pts[i], int(right-left), func(p point) float64 { return p.y }) {
				x, y := xs.pos(p.x), ys.pos(p.y)
				if !finite(x) || !finite(y) || !finite(p.y) {
					if len(cur) > 0 {
						segs, cur = append(segs, cur), nil
					}
					continue
				}
				cur = append(cur, fmt.Sprintf("%.1f,%.1f", x, y))
			}
			if len(cur) > 0 {
				segs = append(segs, cur)
			}
			for _, seg := range segs {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round" points="%s"/>`, esc(color), strings.Join(seg, " "))
			}
			if s.ShowSymbol == nil || *s.ShowSymbol {
				for _, p := range pts[i] {
					x, y := xs.pos(p.x), ys.pos(p.y)
					if finite(x) && finite(y) {
						fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#ffffff" stroke="%s" stroke-width="1.5"/>`, x, y, esc(color))
					}
				}
			}
		case "scatter":
			for _, p := range pts[i] {
				x, y := xs.pos(p.x), ys.pos(p.y)
				if finite(x) && finite(y) {
					fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="%s" fill-opacity="0.8"/>`, x, y, esc(color))
				}
			}
		case "bar":
			band := xs.band()
			group := band * 0.8
			w := group / (float64(nbars) + 0.3*float64(nbars-1))
			base := ys.pos(math.Max(ys.lo, math.Min(0, ys.hi)))
			for j, p := range pts[i] {
				y := ys.pos(p.y)
				if !finite(y) {
					continue
				}
				x := xs.pos(float64(j)) - group/2 + float64(bar)*w*1.3
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`, x, math.Min(y, base), w, math.Abs(base-y), esc(color))
			}
			bar++
		case "heatmap":
			lo, hi, ramp := 0.0, 1.0, []string{"#f7fbff", "#6baed6", "#08306b"}
			if len(o.VisualMap) > 0 {
				lo, hi = o.VisualMap[0].Min, o.VisualMap[0].Max
				if len(o.VisualMap[0].InRange.Color) > 0 {
					ramp = o.VisualMap[0].InRange.Color
				}
			}
			cw, ch := xs.band(), ys.band()
			for _, p := range pts[i] {
				cx, cy := xs.pos(p.x), ys.pos(p.y)
				if !finite(cx) || !finite(cy) || !finite(p.v) {
					continue
				}
				t := 0.0
				if hi > lo {
					t = math.Max(0, math.Min(1, (p.v-lo)/(hi-lo)))
				}
				fill, dark := rampColor(ramp, t)
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" stroke="#ffffff"/>`, cx-cw/2, cy-ch/2, cw, ch, fill)
				if s.Label.Show && p.label != "" {
					text := "#333333"
					if dark {
						text = "#ffffff"
					}
					fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="middle" font-size="12" fill="%s">%s</text>`, cx, cy, text, esc(p.label))
				}
			}
		}
	}
	// A heatmap's colour scale, centred at the bottom: low label, ramp, high label.
	if heat && len(o.VisualMap) > 0 {
		vm := o.VisualMap[0]
		ramp := vm.InRange.Color
		if len(ramp) == 0 {
			ramp = []string{"#f7fbff", "#6baed6", "#08306b"}
		}
		loText, hiText := tickLabel(vm.Min), tickLabel(vm.Max)
		if len(vm.Text) == 2 {
			hiText, loText = vm.Text[0], vm.Text[1]
		}
		const steps, stepW = 20, 6.0
		x0, y0 := W/2-steps*stepW/2, H-22
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" %s>%s</text>`, x0-8, y0+10, axisText, esc(loText))
		for i := range steps {
			fill, _ := rampColor(ramp, (float64(i)+0.5)/steps)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="14" fill="%s"/>`, x0+float64(i)*stepW, y0, stepW+0.5, fill)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" %s>%s</text>`, x0+steps*stepW+8, y0+10, axisText, esc(hiText))
	}
	// The legend, centred at the bottom, wrapping like ECharts' plain legend.
	if o.Legend.Show == nil || *o.Legend.Show {
		var names []string
		for _, s := range o.Series {
			names = append(names, s.Name)
		}
		writeLegend(&b, names, colors, W, H)
	}
	b.WriteString("</svg>")
	return b.String(), true
}

func axisKind(a sAxis, def string) string {
	switch a.Type {
	case "value", "log", "category":
		return a.Type
	case "":
		if len(a.Data) > 0 {
			return "category"
		}
		return def
	}
	return "value"
}

// axisCategories are a category axis's labels, or 0..n-1 when it names none.
func axisCategories(a sAxis, n int) []string {
	var cats []string
	for _, d := range a.Data {
		switch d := d.(type) {
		case string:
			cats = append(cats, d)
		case float64:
			cats = append(cats, tickLabel(d))
		case map[string]any:
			cats = append(cats, fmt.Sprint(d["value"]))
		default:
			cats = append(cats, fmt.Sprint(d))
		}
	}
	for len(cats) < n {
		cats = append(cats, strconv.Itoa(len(cats)))
	}
	return cats
}

// decimate keeps a long series drawable: with more points than about two per pixel, each run of
// points is reduced to its first, lowest and highest, which keeps the curve's shape.
func decimate[P any](pts []P, pixels int, y func(P) float64) []P {
	if pixels <= 0 || len(pts) <= 2*pixels {
		return pts
	}
	per := (len(pts) + pixels - 1) / pixels
	var out []P
	for i := 0; i < len(pts); i += per {
		run := pts[i:min(len(pts), i+per)]
		lo, hi := 0, 0
		for j, p := range run {
			if v := y(p); finite(v) && (v < y(run[lo]) || !finite(y(run[lo]))) {
				lo = j
			}
			if v := y(p); finite(v) && (v > y(run[hi]) || !finite(y(run[hi]))) {
				hi = j
			}
		}
		keep := []int{0, lo, hi}
		if lo > hi {
			keep = []int{0, hi, lo}
		}
		last := -1
		for _, k := range keep {
			if k != last {
				out = append(out, run[k])
				last = k
			}
		}
	}
	return append(out, pts[len(pts)-1])
}

// rampColor interpolates a colour ramp at t in [0, 1]; dark says whether white text reads
// better on it.
func rampColor(ramp []string, t float64) (string, bool) {
	rgb := func(s string) (r, g, b float64) {
		var x uint32
		fmt.Sscanf(strings.TrimPrefix(s, "#"), "%06x", &x)
		return float64(x >> 16 & 0xff), float64(x >> 8 & 0xff), float64(x & 0xff)
	}
	if len(ramp) == 1 {
		r, g, b := rgb(ramp[0])
		return ramp[0], 0.299*r+0.587*g+0.114*b < 140
	}
	f := t * float64(len(ramp)-1)
	i := min(int(f), len(ramp)-2)
	u := f - float64(i)
	r0, g0, b0 := rgb(ramp[i])
	r1, g1, b1 := rgb(ramp[i+1])
	r, g, b := r0+(r1-r0)*u, g0+(g1-g0)*u, b0+(b1-b0)*u
	return fmt.Sprintf("#%02x%02x%02x", int(r+0.5), int(g+0.5), int(b+0.5)), 0.299*r+0.587*g+0.114*b < 140
}

// writeLegend draws the series names with their colours, centred in rows at the bottom (the
// same widths as legendRows: 7 pixels a character plus 40).
func writeLegend(b *strings.Builder, names, colors []string, W, H float64) {
	if len(names) == 0 {
		return
	}
	type item struct {
		name  string
		color string
		w     float64
	}
	var rows [][]item
	var row []item
	x := 0.0
	for i, n := range names {
		w := 7*float64(len([]rune(n))) + 40
		if len(row) > 0 && x+w > W-40 {
			rows, row, x = append(rows, row), nil, 0
		}
		row = append(row, item{n, colors[i%len(colors)], w})
		x += w
	}
	rows = append(rows, row)
	for r, row := range rows {
		total := 0.0
		for _, it := range row {
			total += it.w
		}
		x := (W - total) / 2
		y := H - 12 - 24*float64(len(rows)-1-r)
		for _, it := range row {
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="25" height="12" rx="3" fill="%s"/>`, x, y-10, esc(it.color))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="12" fill="#333333">%s</text>`, x+30, y, esc(it.name))
			x += it.w
		}
	}
}

func esc(s string) string { return html.EscapeString(s) }
