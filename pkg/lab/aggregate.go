package lab

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/tasks"
)

// Group is the runs of one configuration over its seeds: what a results table shows in one
// row as mean ± spread.
type Group struct {
	// Key names the configuration: the grid point's labels but the seed ("rank=8
	// placement=text"), or the run's name outside a grid.
	Key  string
	Runs []Summary
}

// Stat is a mean over a group's runs with its spread: the sample standard deviation (n-1 in
// the denominator), 0 for a single run. N counts the runs that had the value.
type Stat struct {
	Mean, Spread float64
	N            int
}

// newStat computes mean and sample standard deviation of vs.
func newStat(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{Mean: math.NaN(), Spread: math.NaN()}
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	mean := sum / float64(len(vs))
	if len(vs) == 1 {
		return Stat{Mean: mean, N: 1}
	}
	ss := 0.0
	for _, v := range vs {
		ss += (v - mean) * (v - mean)
	}
	return Stat{Mean: mean, Spread: math.Sqrt(ss / float64(len(vs)-1)), N: len(vs)}
}

// Score is the group's mean ± spread of the metric on split, over the runs that are done.
func (g Group) Score(split string) Stat {
	var vs []float64
	for _, s := range g.Runs {
		if v, ok := s.Scores[split]; ok && s.State == Done {
			vs = append(vs, v)
		}
	}
	return newStat(vs)
}

// Trainable is the group's trainable parameter count (the same for every seed).
func (g Group) Trainable() int {
	for _, s := range g.Runs {
		if s.Trainable > 0 {
			return s.Trainable
		}
	}
	return 0
}

// GroupBySeed gathers runs that differ only in their seed: by their grid point without the
// seed when they have one, else by their name and everything their identity holds but the
// seed. Groups keep the order of their first run.
func GroupBySeed(sums []Summary) []Group {
	var groups []Group
	index := map[string]int{}
	for _, s := range sums {
		k := groupKey(s)
		i, ok := index[k]
		if !ok {
			i = len(groups)
			index[k] = i
			groups = append(groups, Group{Key: displayKey(s)})
		}
		groups[i].Runs = append(groups[i].Runs, s)
	}
	return groups
}

// groupKey identifies a summary's configuration but its seed.
func groupKey(s Summary) string {
	if len(s.Point) > 0 {
		return pointKey(s.Point, "seed")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%g|%d|%d|", s.Name, s.Base, s.Task, s.LR, s.Steps, s.BatchSize)
	for _, m := range s.Methods {
		b.WriteString(m.Type + string(m.Config) + "|")
	}
	return b.String()
}

// displayKey names a summary's group: its grid point without the seed ("rank=8
// placement=text"), just the variant's name when a Variants axis is the only one left, else
// the run's name.
func displayKey(s Summary) string {
	if len(s.Point) > 0 {
		k := pointKey(s.Point, "seed")
		if v, ok := s.Point["method"]; ok && k == "method="+v {
			return v
		}
		return k
	}
	return s.Name
}

// pointKey joins a point's labels in name order, leaving out the axes named in skip.
func pointKey(point map[string]string, skip ...string) string {
	names := make([]string, 0, len(point))
	for n := range point {
		if !slices.Contains(skip, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + point[n]
	}
	return strings.Join(parts, " ")
}

// TableHeader names the columns of Table.
var TableHeader = []string{"configuration", "method", "trainable", "of all", "seeds", "validation", "test", "step time", "note"}

// Table is a results table: one row per configuration (see GroupBySeed), with its trainable
// scalars and their share of all weights, the number of seeds, the validation and test scores
// as mean ± spread over seeds (see Stat; the metric formatted as it is usually reported), the
// median step time, and a note naming the seeds that failed.
func Table(sums []Summary) (header []string, rows [][]string) {
	for _, g := range GroupBySeed(sums) {
		first := g.Runs[0]
		var notes []string
		steps := []float64{}
		for _, s := range g.Runs {
			if s.State != Done {
				notes = append(notes, fmt.Sprintf("seed %d %s: %s", s.Seed, s.State, s.Error))
			}
			if s.StepSeconds > 0 {
				steps = append(steps, s.StepSeconds)
			}
		}
		st := "–"
		if len(steps) > 0 {
			slices.Sort(steps)
			st = formatSeconds(steps[len(steps)/2])
		}
		share := percent(g.Trainable(), first.Total)
		if first.Method == "BASE" {
			share = "0%"
		}
		rows = append(rows, []string{g.Key, first.Method, fmt.Sprint(g.Trainable()), share, fmt.Sprint(len(g.Runs)),
			FormatStat(first.Metric, g.Score(SplitValidation)), FormatStat(first.Metric, g.Score(SplitTest)), st,
			strings.Join(notes, "; ")})
	}
	return TableHeader, rows
}

// FormatStat formats mean ± spread with FormatScore's units ("97.1% ± 0.8", "0.412 ±
// 0.020"), the mean alone for one run, "–" for none.
func FormatStat(metric string, s Stat) string {
	if s.N == 0 {
		return "–"
	}
	m := FormatScore(metric, s.Mean)
	if s.N == 1 {
		return m
	}
	if metric == tasks.MetricAccuracy {
		return fmt.Sprintf("%s ± %.1f", m, 100*s.Spread)
	}
	return fmt.Sprintf("%s ± %.3f", m, s.Spread)
}

// formatSeconds is formatDuration for seconds.
func formatSeconds(s float64) string {
	return formatDuration(time.Duration(s * float64(time.Second)))
}
