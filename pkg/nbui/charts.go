package nbui

import (
	"math"
	"strconv"

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

// Default chart size: fixed pixels rather than a percentage, because a chart drawn while its
// output area has no width yet (a hidden tab, a collapsed output) would otherwise be empty.
const (
	chartWidth  = "800px"
	chartHeight = "400px"
)

// Line draws curves over a numeric x axis, e.g. training and eval loss over steps. Series may be
// sampled at different x positions. The y axis fits the data instead of starting at 0.
func Line(title, xName string, series ...Series) *charts.Line {
	c := charts.NewLine()
	c.SetGlobalOptions(common(title)...)
	c.SetGlobalOptions(
		charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}),
		charts.WithXAxisOpts(opts.XAxis{Type: "value", Name: xName, NameLocation: "middle", NameGap: 28,
			Min: "dataMin", Max: "dataMax"}),
		charts.WithYAxisOpts(opts.YAxis{Type: "value", Scale: opts.Bool(true)}),
	)
	for _, s := range series {
		n := len(s.Y)
		if s.X != nil {
			n = min(n, len(s.X))
		}
		data := make([]opts.LineData, n)
		for i := range n {
			x := float64(i)
			if s.X != nil {
				x = s.X[i]
			}
			data[i] = opts.LineData{Value: []any{value(x), value(s.Y[i])}}
		}
		// Markers on every point only help short series; on a 1000-step curve they are a blur.
		c.AddSeries(s.Name, data, charts.WithLineChartOpts(opts.LineChart{ShowSymbol: opts.Bool(n <= 50)}))
	}
	return c
}

// Bar draws one bar per category for each series (grouped bars): Y[i] is the value for
// categories[i].
func Bar(title string, categories []string, series ...Series) *charts.Bar {
	c := charts.NewBar()
	c.SetGlobalOptions(common(title)...)
	c.SetGlobalOptions(charts.WithTooltipOpts(opts.Tooltip{Show: opts.Bool(true), Trigger: "axis"}))
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
	c := charts.NewHeatMap()
	c.SetGlobalOptions(common(title)...)
	lo, hi := math.Inf(1), math.Inf(-1)
	var data []opts.HeatMapData
	for i, row := range values {
		for j, v := range row {
			if finite(v) {
				lo, hi = min(lo, v), max(hi, v)
			}
			data = append(data, opts.HeatMapData{Value: []any{j, i, value(round4(v))}})
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
	c.AddSeries(title, data, charts.WithLabelOpts(opts.Label{Show: opts.Bool(true), Formatter: "{@[2]}"}))
	return c
}

// common are the options every chart here shares: size, title, legend at the bottom (where it
// does not collide with a long title), and room for it.
func common(title string) []charts.GlobalOpts {
	return []charts.GlobalOpts{
		charts.WithInitializationOpts(opts.Initialization{Width: chartWidth, Height: chartHeight}),
		charts.WithTitleOpts(opts.Title{Title: title}),
		charts.WithLegendOpts(opts.Legend{Show: opts.Bool(true), Type: "scroll", Bottom: "0"}),
		charts.WithGridOpts(opts.Grid{Bottom: "70", ContainLabel: opts.Bool(true)}),
	}
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
