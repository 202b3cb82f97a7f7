package lab

import (
	"fmt"
	"time"

	"github.com/peftlab/peftlab/pkg/tasks"
)

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
