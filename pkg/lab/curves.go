package lab

import (
	"github.com/go-echarts/go-echarts/v2/charts"
	"github.com/go-echarts/go-echarts/v2/opts"
	"github.com/peftlab/peftlab/pkg/nbui"
)

// palette is ECharts' default series palette: each run keeps one colour for its training and
// its evaluation curve.
var palette = []string{"#5470c6", "#91cc75", "#fac858", "#ee6666", "#73c0de", "#3ba272", "#fc8452", "#9a60b4", "#ea7ccc"}

// Curves draws the loss curves of runs as one line chart over training steps: per run, the
// training loss as a solid line, smoothed by a trailing mean over Smoothing(steps) steps
// (single-batch losses are too noisy to compare), and, when the run was evaluated, its
// evaluation loss as a dashed line of the same colour, named "<run> (eval)". Show it with
// nbui.Show, or use ShowCurves.
func Curves(title string, runs ...Run) *charts.Line {
	var series []nbui.Series
	var dashed []bool
	var colour []string
	for i, r := range runs {
		if r.Record == nil {
			continue
		}
		c := palette[i%len(palette)]
		xs := make([]float64, len(r.Record.Steps))
		for j, p := range r.Record.Steps {
			xs[j] = float64(p.Step)
		}
		series = append(series, nbui.Series{Name: r.Name, X: xs,
			Y: TrailingMean(r.Record.Losses(), Smoothing(len(r.Record.Steps)))})
		dashed, colour = append(dashed, false), append(colour, c)
		if len(r.Record.Evals) > 0 {
			ex := make([]float64, len(r.Record.Evals))
			ey := make([]float64, len(r.Record.Evals))
			for j, e := range r.Record.Evals {
				ex[j], ey[j] = float64(e.Step), e.Loss
			}
			series = append(series, nbui.Series{Name: r.Name + " (eval)", X: ex, Y: ey})
			dashed, colour = append(dashed, true), append(colour, c)
		}
	}
	chart := nbui.Line(title, nbui.Axes{X: "step", Y: "loss"}, series...)
	for i := range chart.MultiSeries {
		style := &opts.LineStyle{Color: colour[i]}
		if dashed[i] {
			style.Type = "dashed"
		}
		chart.MultiSeries[i].LineStyle = style
		chart.MultiSeries[i].ItemStyle = &opts.ItemStyle{Color: colour[i]}
	}
	return chart
}

// ShowCurves shows Curves(title, runs...) in the notebook cell (nothing outside a notebook).
func ShowCurves(title string, runs ...Run) error {
	return nbui.Show(Curves(title, runs...))
}

// Smoothing is the trailing-mean window Curves uses for a run of n steps: about a
// twentieth of the run, at least 1 (no smoothing).
func Smoothing(n int) int {
	return max(1, n/20)
}

// TrailingMean returns, for each i, the mean of ys[i-w+1 .. i] (fewer at the start).
// NaN and ±Inf values propagate into the windows that contain them, so a diverged run shows
// as a gap, not as a smoothed-over dip.
func TrailingMean(ys []float64, w int) []float64 {
	w = max(1, w)
	out := make([]float64, len(ys))
	for i := range ys {
		lo := max(0, i-w+1)
		sum := 0.0
		for _, y := range ys[lo : i+1] {
			sum += y
		}
		out[i] = sum / float64(i+1-lo)
	}
	return out
}
