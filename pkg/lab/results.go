package lab

import (
	"fmt"
	"slices"
	"time"

	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// Results tabulates runs, one row each: name, method, trainable scalars and their share of
// all weights, steps taken, median step time (see Run.StepTime), last evaluation loss, and one
// column per task metric the runs were scored with. A "note" column appears when a run
// stopped on an error.
func Results(runs ...Run) (header []string, rows [][]string) {
	header = []string{"run", "method", "trainable", "of all", "steps", "step time", "eval loss"}
	var metrics []string
	notes := false
	for _, r := range runs {
		if r.Metric != "" && !slices.Contains(metrics, r.Metric) {
			metrics = append(metrics, r.Metric)
		}
		if r.Record != nil && r.Record.Error != "" {
			notes = true
		}
	}
	header = append(header, metrics...)
	if notes {
		header = append(header, "note")
	}
	for _, r := range runs {
		row := []string{r.Name, r.Method()}
		if r.Record == nil { // a score without training, e.g. the base model zero-shot
			row[1] = "–"
			row = append(row, "0", "0%", "0", "–", "–")
		} else {
			rec := r.Record
			share := percent(rec.TrainableParams, rec.PlannedTotal)
			if len(rec.Adapters) == 0 {
				share = "100%"
			}
			eval := "–"
			if e, ok := r.LastEval(); ok {
				eval = fmt.Sprintf("%.4f", e.Loss)
			}
			row = append(row, fmt.Sprint(rec.TrainableParams), share, fmt.Sprint(len(rec.Steps)),
				formatDuration(r.StepTime()), eval)
		}
		for _, m := range metrics {
			cell := ""
			if r.Metric == m {
				cell = FormatScore(m, r.Score)
			}
			row = append(row, cell)
		}
		if notes {
			note := ""
			if r.Record != nil && r.Record.Error != "" {
				note = "stopped: " + r.Record.Error
			}
			row = append(row, note)
		}
		rows = append(rows, row)
	}
	return header, rows
}

// ShowResults shows Results(runs...) as a table (aligned text outside a notebook).
func ShowResults(runs ...Run) {
	nbui.Table(Results(runs...))
}

// FormatScore formats a metric value the way it is usually reported: accuracy in percent,
// other metrics (CIDEr-D) with three decimals.
func FormatScore(metric string, v float64) string {
	if metric == tasks.MetricAccuracy {
		return fmt.Sprintf("%.1f%%", 100*v)
	}
	return fmt.Sprintf("%.3f", v)
}

// formatDuration shows a step time with three significant digits in a fitting unit.
func formatDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "–"
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g s", d.Seconds())
	}
}
