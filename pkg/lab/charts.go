package lab

import (
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// Heatmap draws the test score of runs over two grid axes (e.g. x "placement", y "rank"):
// each cell is the mean over the runs at that point, whatever their other axes (seeds,
// typically), and shows it with its spread ("97.1 ± 0.8"; see Stat). Accuracy is in
// percent.
func Heatmap(title string, sums []Summary, x, y string) *charts.HeatMap {
	xs, ys := axisLabels(sums, x), axisLabels(sums, y)
	values := make([][]float64, len(ys))
	labels := make([][]string, len(ys))
	metric := ""
	for i, yl := range ys {
		values[i] = make([]float64, len(xs))
		labels[i] = make([]string, len(xs))
		for j, xl := range xs {
			var vs []float64
			for _, s := range sums {
				if v, ok := s.Scores[SplitTest]; ok && s.State == Done && s.Point[x] == xl && s.Point[y] == yl {
					vs = append(vs, v)
					metric = s.Metric
				}
			}
			st := newStat(vs)
			values[i][j], labels[i][j] = scale(metric, st.Mean), cellLabel(metric, st)
		}
	}
	c := nbui.LabeledHeatmap(title, xs, ys, values, labels)
	c.XAxisList[0].Name, c.YAxisList[0].Name = x, y
	return c
}

// scale is a metric value as charts show it: accuracy in percent.
func scale(metric string, v float64) float64 {
	if metric == tasks.MetricAccuracy {
		return 100 * v
	}
	return v
}

// cellLabel is a heatmap cell's text: the mean, with the spread when there are several runs.
func cellLabel(metric string, st Stat) string {
	switch {
	case st.N == 0:
		return ""
	case st.N == 1:
		return fmt.Sprintf("%.4g", scale(metric, st.Mean))
	}
	return fmt.Sprintf("%.4g ± %.2g", scale(metric, st.Mean), scale(metric, st.Spread))
}

// axisLabels lists the values runs take on a grid axis, in the order they first appear.
func axisLabels(sums []Summary, axis string) []string {
	var out []string
	for _, s := range sums {
		if l, ok := s.Point[axis]; ok && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// ParetoPoint is one configuration on the score-versus-size chart.
type ParetoPoint struct {
	Key       string
	Method    string
	Trainable int
	Score     Stat
	// Front marks the configurations no other one beats with as few trainable parameters or
	// fewer: the Pareto front.
	Front bool
}

// Pareto groups runs by configuration (over seeds, see GroupBySeed) and marks the Pareto
// front of mean test score against trainable parameters. Points come sorted by size.
func Pareto(sums []Summary) []ParetoPoint {
	var pts []ParetoPoint
	for _, g := range GroupBySeed(sums) {
		st := g.Score(SplitTest)
		if st.N == 0 {
			continue
		}
		pts = append(pts, ParetoPoint{Key: g.Key, Method: g.Runs[0].Method, Trainable: g.Trainable(), Score: st})
	}
	sort.SliceStable(pts, func(i, j int) bool {
		if pts[i].Trainable != pts[j].Trainable {
			return pts[i].Trainable < pts[j].Trainable
		}
		return pts[i].Score.Mean > pts[j].Score.Mean
	})
	best := math.Inf(-1)
	for i := range pts {
		if pts[i].Score.Mean > best {
			pts[i].Front, best = true, pts[i].Score.Mean
		}
	}
	return pts
}

// ParetoChart draws Pareto(sums): one series of points per method, the trainable parameters
// on a log axis, and the front as a line through its points.
func ParetoChart(title string, sums []Summary) *charts.Scatter {
	pts := Pareto(sums)
	metric := ""
	for _, s := range sums {
		if s.Metric != "" {
			metric = s.Metric
			break
		}
	}
	var series []nbui.Series
	index := map[string]int{}
	var front nbui.Series
	front.Name = "Pareto front"
	for _, p := range pts {
		i, ok := index[p.Method]
		if !ok {
			i = len(series)
			index[p.Method] = i
			series = append(series, nbui.Series{Name: p.Method})
		}
		x, y := float64(max(1, p.Trainable)), scale(metric, p.Score.Mean)
		series[i].X, series[i].Y = append(series[i].X, x), append(series[i].Y, y)
		if p.Front {
			front.X, front.Y = append(front.X, x), append(front.Y, y)
		}
	}
	yName := "test " + metric
	if metric == tasks.MetricAccuracy {
		yName += " (%)"
	}
	c := nbui.Scatter(title, nbui.Axes{X: "trainable parameters", Y: yName, LogX: true}, series...)
	// The front as a line over the scatter, drawn by ECharts as a line series.
	line := make([]opts.ScatterData, len(front.X))
	for i := range front.X {
		line[i] = opts.ScatterData{Value: []any{front.X[i], front.Y[i]}, SymbolSize: 4}
	}
	c.AddSeries(front.Name, line)
	c.MultiSeries[len(c.MultiSeries)-1].Type = "line"
	c.MultiSeries[len(c.MultiSeries)-1].LineStyle = &opts.LineStyle{Type: "dashed", Color: "#888"}
	c.MultiSeries[len(c.MultiSeries)-1].ItemStyle = &opts.ItemStyle{Color: "#888"}
	return c
}
