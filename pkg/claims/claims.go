// Package claims tests the AdaLink paper's claims (arXiv 2310.12100; see the notes in
// ../shared/notes/method.md) on the runs of a lab store, and writes the verdicts as the
// README's results section.
//
// Each claim selects the runs the tutorial notebooks (02 to 05) train, by what the runs
// are (base, task, method, rank, placement, budget), never by how a notebook named them,
// groups them over seeds and compares means with the rule of Compare. The verdicts are
// plain: supported, not supported, or not settled at this scale (the difference is within
// the noise of three seeds), and "not measured" when the store lacks the runs.
package claims

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/lab"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// Verdict is what the runs say about a claim.
type Verdict string

// The verdicts.
const (
	Supported    Verdict = "supported"
	NotSupported Verdict = "not supported"
	NotSettled   Verdict = "not settled at this scale"
	NotMeasured  Verdict = "not measured yet"
)

// Finding is one claim with our numbers and the verdict.
type Finding struct {
	N     int
	Claim string
	// How says which runs were compared and by which rule.
	How     string
	Verdict Verdict
	// Header and Rows are the numbers behind the verdict (mean ± spread over seeds).
	Header []string
	Rows   [][]string
	// Note says why, in a sentence.
	Note string
}

// Config selects a configuration's runs: every field that is set must match.
type Config struct {
	Label     string
	Base      string
	Task      string
	Method    string // Summary.Method: "ADALINK", "LORA", "PROMPT_TUNING", "FULL"
	Rank      int
	Placement string
	Steps     int
}

// match reports whether a summary is a complete, full-mode, test-scored run of c.
func (c Config) match(s lab.Summary) bool {
	if s.Fast || s.State != lab.Done {
		return false
	}
	if _, ok := s.Scores[lab.SplitTest]; !ok {
		return false // a learning rate a sweep did not choose
	}
	return (c.Base == "" || s.Base == c.Base) && (c.Task == "" || s.Task == c.Task) &&
		(c.Method == "" || s.Method == c.Method) && (c.Rank == 0 || s.Rank == c.Rank) &&
		(c.Placement == "" || s.Placement == c.Placement) && (c.Steps == 0 || s.Steps == c.Steps)
}

// Select returns the test scores of c's runs, one per seed (the latest run of a seed when a
// store holds several, e.g. from different learning-rate sweeps).
func (c Config) Select(sums []lab.Summary) (scores []float64, metric string) {
	bySeed := map[int64]lab.Summary{}
	for _, s := range sums {
		if !c.match(s) {
			continue
		}
		if old, ok := bySeed[s.Seed]; !ok || s.Finished.After(old.Finished) {
			bySeed[s.Seed] = s
		}
	}
	seeds := make([]int64, 0, len(bySeed))
	for k := range bySeed {
		seeds = append(seeds, k)
	}
	slices.Sort(seeds)
	for _, k := range seeds {
		scores = append(scores, bySeed[k].Scores[lab.SplitTest])
		metric = bySeed[k].Metric
	}
	return scores, metric
}

// Stat is a mean with its sample standard deviation over n seeds.
type Stat struct {
	Mean, SD float64
	N        int
	Metric   string
}

func stat(vs []float64, metric string) Stat {
	st := Stat{N: len(vs), Metric: metric, Mean: math.NaN()}
	if len(vs) == 0 {
		return st
	}
	sum := 0.0
	for _, v := range vs {
		sum += v
	}
	st.Mean = sum / float64(len(vs))
	if len(vs) > 1 {
		ss := 0.0
		for _, v := range vs {
			ss += (v - st.Mean) * (v - st.Mean)
		}
		st.SD = math.Sqrt(ss / float64(len(vs)-1))
	}
	return st
}

// Of is the statistics of c's runs.
func (c Config) Of(sums []lab.Summary) Stat {
	return stat(c.Select(sums))
}

// String formats the mean ± spread in the metric's units.
func (s Stat) String() string {
	if s.N == 0 {
		return "–"
	}
	f := "%.3f ± %.3f"
	m, sd := s.Mean, s.SD
	if s.Metric == tasks.MetricAccuracy {
		f, m, sd = "%.1f%% ± %.1f", 100*m, 100*sd
	}
	return fmt.Sprintf(f+" (n=%d)", m, sd, s.N)
}

// MinSeeds is how many seeds a configuration needs before a claim is judged on it.
const MinSeeds = 3

// se is the standard error of a mean.
func (s Stat) se() float64 { return s.SD / math.Sqrt(float64(max(1, s.N))) }

// Compare judges "a is above b": +1 when the difference of the means exceeds twice its
// standard error (sqrt(se_a² + se_b²)), -1 when it is below minus twice that, 0 in between
// (not settled). Two seeds' worth of noise is what three seeds can resolve; nothing finer
// is claimed.
func Compare(a, b Stat) (sign int, diff, margin float64) {
	diff = a.Mean - b.Mean
	margin = 2 * math.Hypot(a.se(), b.se())
	switch {
	case diff > margin:
		return 1, diff, margin
	case diff < -margin:
		return -1, diff, margin
	}
	return 0, diff, margin
}

// enough reports whether every stat has MinSeeds runs.
func enough(sts ...Stat) bool {
	for _, s := range sts {
		if s.N < MinSeeds {
			return false
		}
	}
	return true
}

// points formats a difference in the metric's units.
func points(metric string, d float64) string {
	if metric == tasks.MetricAccuracy {
		return fmt.Sprintf("%+.1f points", 100*d)
	}
	return fmt.Sprintf("%+.3f", d)
}

// row is a table row for a configuration.
func row(label string, st Stat) []string { return []string{label, st.String()} }

// joinNotes joins sentences.
func joinNotes(notes []string) string { return strings.Join(notes, " ") }
