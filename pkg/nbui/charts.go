package nbui

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
)

// Series is one named sequence of values: a curve for Line (Y[i] at X[i]), a set of bars for
// Bar (Y[i] for category i). NaN and ±Inf values are shown as gaps, so a diverged run still
// plots.
type Series struct {
	Name string
	// X holds the positions of the points for Line (e.g. the steps at which an eval loss was
	// measured); nil means 0, 1, 2, .... Points beyond len(X) are dropped. Bar ignores X.
	X []float64
	Y []float64
}

// Default chart width: fixed pixels rather than a percentage, because a chart drawn while its
// output area has no width yet (a hidden tab, a collapsed output) would otherwise be empty.
// The height follows the title and the legend (see layout).
const chartWidth = "800px"

// Axes names a chart's axes; ECharts draws each name beside its axis, so a reader knows what
// the numbers are (a loss, an accuracy in percent). LogX puts a numeric x axis on a log scale
// (Scatter, Line), e.g. for parameter counts spanning orders of magnitude.
type Axes struct {
	X, Y string
	LogX bool
}

// xAxis is the numeric x axis of Line and Scatter.
func (a Axes) xAxis() opts.XAxis {
	x := opts.XAxis{Type: "value", Name: a.X, NameLocation: "middle", NameGap: 28, Min: "dataMin", Max: "dataMax"}
	if a.LogX {
		x.Type = "log"
	}
	return x
}

// yAxis is the value axis, named along its side, fitted to the data instead of starting at 0.
func (a Axes) yAxis() opts.YAxis {
	return opts.YAxis{Type: "value", Name: a.Y, NameLocation: "middle", NameGap: 50, Scale: opts.Bool(true)}
}

// Line draws curves over a numeric x axis, e.g. training and eval loss over steps. Series may be
// sampled at different x positions. The y axis fits the data instead of starting at 0.
func Line(title string, axes Axes, series ...Series) *charts.Line {
	c := charts.NewLine()
	c.SetGlobalOptions(layout(title, names(series))...)
	c.SetGlobalOptions(
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithXAxisOpts(axes.xAxis()),
		charts.WithYAxisOpts(axes.yAxis()),
	)
	for _, s := range series {
		data := points(s)
		ld := make([]opts.LineData, len(data))
		for i, d := range data {
			ld[i] = opts.LineData{Value: d}
		}
		// Markers on every point only help short series; on a 1000-step curve they are a blur.
		c.AddSeries(s.Name, ld, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(len(ld) <= 50)}))
	}
	return c
}

// Scatter draws points (X[i], Y[i]) per series, e.g. score against trainable parameters.
func Scatter(title string, axes Axes, series ...Series) *charts.Scatter {
	c := charts.NewScatter()
	c.SetGlobalOptions(layout(title, names(series))...)
	c.SetGlobalOptions(
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "item"}),
		charts.WithXAxisOpts(axes.xAxis()),
		charts.WithYAxisOpts(axes.yAxis()),
	)
	for _, s := range series {
		data := points(s)
		sd := make([]opts.ScatterData, len(data))
		for i, d := range data {
			sd[i] = opts.ScatterData{Value: d, SymbolSize: 10}
		}
		c.AddSeries(s.Name, sd)
	}
	return c
}

// points are a series' [x, y] pairs (X nil: 0, 1, 2...; points beyond len(X) dropped).
func points(s Series) [][]any {
	n := len(s.Y)
	if s.X != nil {
		n = min(n, len(s.X))
	}
	out := make([][]any, n)
	for i := range n {
		x := float64(i)
		if s.X != nil {
			x = s.X[i]
		}
		out[i] = []any{value(x), value(s.Y[i])}
	}
	return out
}

func names(series []Series) []string {
	out := make([]string, len(series))
	for i, s := range series {
		out[i] = s.Name
	}
	return out
}

// Bar draws one bar per category for each series (grouped bars): Y[i] is the value for
// categories[i]. axes.X names the categories, axes.Y the values.
func Bar(title string, axes Axes, categories []string, series ...Series) *charts.Bar {
	c := charts.NewBar()
	c.SetGlobalOptions(layout(title, names(series))...)
	c.SetGlobalOptions(charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithXAxisOpts(opts.XAxis{Name: axes.X, NameLocation: "middle", NameGap: 28}),
		charts.WithYAxisOpts(opts.YAxis{Name: axes.Y, NameLocation: "middle", NameGap: 50}))
	c.SetXAxis(categories)
	for _, s := range series {
		data := make([]opts.BarData, len(s.Y))
		for i, y := range s.Y {
			data[i] = opts.BarData{Value: value(y)}
		}
		c.AddSeries(s.Name, data)
	}
	return c
}

// Heatmap draws a grid of values, e.g. an ablation over two hyperparameters: values[i][j] is the
// cell of row yLabels[i] and column xLabels[j]. The first row is at the top, as in a table, and
// each cell shows its value (4 significant digits). NaN and ±Inf cells are left empty.
func Heatmap(title string, xLabels, yLabels []string, values [][]float64) *charts.HeatMap {
	return LabeledHeatmap(title, xLabels, yLabels, values, nil)
}

// LabeledHeatmap is Heatmap with each cell showing labels[i][j] instead of its value (e.g.
// "97.1 ± 0.8": a mean with its spread); the colour still follows values.
func LabeledHeatmap(title string, xLabels, yLabels []string, values [][]float64, labels [][]string) *charts.HeatMap {
	c := charts.NewHeatMap()
	c.SetGlobalOptions(layout(title, nil)...)
	lo, hi := math.Inf(1), math.Inf(-1)
	var data []opts.HeatMapData
	for i, row := range values {
		for j, v := range row {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
			cell := []any{j, i, value(round4(v))}
			if labels != nil {
				cell = append(cell, labels[i][j])
			}
			data = append(data, opts.HeatMapData{Value: cell})
		}
	}
	if lo > hi { // no finite value
		lo, hi = 0, 1
	}
	if lo == hi {
		lo, hi = lo-0.5, hi+0.5
	}
	c.SetGlobalOptions(
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true)}),
		charts.WithXAxisOpts(opts.XAxis{Type: "category", Data: xLabels, SplitArea: &opts.SplitArea{Show: opts.Bool(true)}}),
		charts.WithYAxisOpts(opts.YAxis{Type: "category", Data: yLabels, Inverse: opts.Bool(true),
			SplitArea: &opts.SplitArea{Show: opts.Bool(true)}}),
		// The color scale is labelled with its bounds (go-echarts cannot set the precision of
		// ECharts' own handle labels, which would round 0.81..0.88 to "1".)
		charts.WithVisualMapOpts(opts.VisualMap{Calculable: opts.Bool(false), Orient: "horizontal", Left: "center",
			Bottom: "0", Min: visualBound(lo), Max: visualBound(hi), Text: []string{fmt4(hi), fmt4(lo)},
			InRange: &opts.VisualMapInRange{Color: []string{"#f7fbff", "#6baed6", "#08306b"}}}),
		// The color scale takes the legend's place at the bottom; one series needs no legend.
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(false)}),
	)
	formatter := "{@[2]}"
	if labels != nil {
		formatter = "{@[3]}"
	}
	c.AddSeries(title, data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Formatter: formatter}))
	return c
}

// layout sizes a chart for its title and legend, the two things the browser showed cut off:
// ECharts draws a title on one line whatever its length, so a long one is wrapped here (at
// titleWidth characters) and the plot moves down; and a paged ("scroll") legend hides which
// colour is which once a dozen runs share a chart, so the legend is a plain one that wraps
// onto as many rows as it needs below the plot, and the chart grows to keep the plot's size.
func layout(title string, legend []string) []charts.GlobalOpts {
	lines := wrap(title, titleWidth)
	rows := legendRows(legend)
	top := 40 + 20*(len(lines)-1)
	bottom := 50 + 24*rows
	height := 400 + 20*(len(lines)-1) + 24*max(0, rows-1)
	return []charts.GlobalOpts{
		charts.WithInitializationOpts(opts.Initialization{Width: chartWidth, Height: fmt.Sprintf("%dpx", height)}),
		charts.WithTitleOpts(opts.Title{Title: strings.Join(lines, "\n")}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(len(legend) > 0), Type: "plain", Bottom: "0", Left: "center"}),
		charts.WithGridOpts(opts.Grid{Top: fmt.Sprint(top + 10), Bottom: fmt.Sprint(bottom), Left: "70", Right: "40", ContainLabel: opts.Bool(true)}),
	}
}

// titleWidth is the title length, in characters, that fits an 800-pixel chart.
const titleWidth = 80

// wrap breaks s into lines of at most width characters at spaces (a longer word keeps its
// own line).
func wrap(s string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		switch {
		case line == "":
			line = w
		case len([]rune(line))+1+len([]rune(w)) <= width:
			line += " " + w
		default:
			lines = append(lines, line)
			line = w
		}
	}
	return append(lines, line)
}

// legendRows estimates the rows a plain legend of these names takes in an 800-pixel chart:
// about 7 pixels a character plus 40 for the colour mark and the gap.
func legendRows(names []string) int {
	if len(names) == 0 {
		return 0
	}
	rows, x := 1, 0
	for _, n := range names {
		w := 7*len([]rune(n)) + 40
		if x > 0 && x+w > 760 {
			rows, x = rows+1, 0
		}
		x += w
	}
	return rows
}

func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// value is v for JSON, or "-" (ECharts' missing value) when v is NaN or infinite, which JSON
// cannot encode.
func value(v float64) any {
	if !finite(v) {
		return "-"
	}
	return v
}

func fmt4(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) }

func round4(v float64) float64 {
	if !finite(v) {
		return v
	}
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 4, 64), 64)
	return r
}

// visualBound converts a bound for the visualMap, whose go-echarts fields drop a zero value
// (omitempty) and so would fall back to ECharts' default range [0, 200].
func visualBound(v float64) float32 {
	f := float32(v)
	if f == 0 {
		return math.SmallestNonzeroFloat32
	}
	return f
}
