package lab

import (
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/nbui"
)

// Grid is an ablation: an experiment run at every combination of its axes' values, e.g.
// rank × placement × seed. Run trains the points the store does not hold yet, one after the
// other, under one progress display, and stops starting new ones when its time budget is
// spent, so that a notebook cell ends cleanly before the runner's cell limit; running the
// grid again continues where it stopped (finished points come from the store); each call
// trains at least one point. A point that
// fails is recorded with its error and the grid carries on. Points another process is
// training are left for last and then waited for, so two kernels can share one grid.
//
// In fast mode (Store.Fast) a grid is a smoke test of itself: it keeps the first seed and the
// first and last values of each ablation axis (ranks, placements, targets, learning rates),
// and every value of the axes of named things (methods, bases, tasks).
//
// With LRs set, the learning rate is not an axis but chosen: for each combination of the
// other axes (all seeds sharing one choice, made with the first seed), every LR trains and is
// scored on the validation split, the best validation score wins, and only the winner is
// scored on the test split. Points then report the chosen LR's run.
type Grid struct {
	// Name titles the progress display.
	Name string
	// Experiment is the template every point starts from.
	Experiment Experiment
	// Axes are varied in order, the last one fastest.
	Axes []Axis
	// LRs, when set, are swept on validation for each point (see Grid).
	LRs []float64
	// Budget is the wall time after which no new point starts. 0 takes DefaultBudget;
	// negative means no limit.
	Budget time.Duration
	// Store keeps the runs; nil takes DefaultStore.
	Store *Store
}

// DefaultBudget leaves a training cell two minutes of the notebook runner's ten-minute cell
// limit for the point that is under way when the budget runs out, and for the charts.
const DefaultBudget = 8 * time.Minute

// GridResult is what a grid holds after Run: a run per finished point (failed ones
// included, their State says so), in the order of the axes.
type GridResult struct {
	Axes []Axis
	Runs []Run
	// Pending counts the points not run because the budget ran out: run the grid again.
	Pending int
	// Sweeps holds every run of a learning-rate sweep, the chosen ones included.
	Sweeps []Run
}

// Complete reports whether every point has a run.
func (g *GridResult) Complete() bool { return g.Pending == 0 }

// Summaries returns the runs' summaries, each with its grid point.
func (g *GridResult) Summaries() []Summary { return Summaries(g.Runs) }

// Failed returns the runs that failed.
func (g *GridResult) Failed() []Run {
	var out []Run
	for _, r := range g.Runs {
		if r.State == Failed {
			out = append(out, r)
		}
	}
	return out
}

// point is one combination of axis values.
type point struct {
	labels map[string]string
	x      Experiment
	// sweepKey groups points that share a learning-rate choice (all axes but the seed).
	sweepKey string
}

// points expands the axes over the template; fast thins them (see Axis.fastValues).
func (g Grid) points(fast bool) ([]point, error) {
	pts := []point{{labels: map[string]string{}, x: g.Experiment}}
	seen := map[string]bool{}
	for _, a := range g.Axes {
		if a.set == nil || len(a.Labels) == 0 {
			return nil, fmt.Errorf("grid %s: axis %q has no values", g.Name, a.Name)
		}
		if seen[a.Name] {
			return nil, fmt.Errorf("grid %s: two axes are named %q", g.Name, a.Name)
		}
		seen[a.Name] = true
		values := a.fastValues()
		if !fast {
			values = values[:0]
			for i := range a.Labels {
				values = append(values, i)
			}
		}
		var next []point
		for _, p := range pts {
			for _, i := range values {
				label := a.Labels[i]
				q := point{labels: maps.Clone(p.labels), x: p.x, sweepKey: p.sweepKey}
				q.x.Methods = append(q.x.Methods[:0:0], p.x.Methods...)
				if err := a.set(&q.x, i); err != nil {
					return nil, fmt.Errorf("grid %s: axis %s = %s: %w", g.Name, a.Name, label, err)
				}
				q.labels[a.Name] = label
				if !a.seed {
					q.sweepKey += a.Name + "=" + label + ";"
				}
				next = append(next, q)
			}
		}
		pts = next
	}
	return pts, nil
}

// label names a point for displays: its axis values, or the experiment's name.
func (p point) label(axes []Axis) string {
	var parts []string
	for _, a := range axes {
		parts = append(parts, a.Name+"="+p.labels[a.Name])
	}
	if len(parts) == 0 {
		return p.x.label()
	}
	return strings.Join(parts, " ")
}

// open returns the grid's store (DefaultStore when unset) and its points in the store's mode.
func (g Grid) open() (*Store, []point, error) {
	s := g.Store
	if s == nil {
		var err error
		if s, err = DefaultStore(); err != nil {
			return nil, nil, err
		}
	}
	pts, err := g.points(s.Fast)
	return s, pts, err
}

// Run runs the grid (see Grid).
func (g Grid) Run() (*GridResult, error) {
	s, pts, err := g.open()
	if err != nil {
		return nil, err
	}
	budget := g.Budget
	if budget == 0 {
		budget = DefaultBudget
	}
	name := g.Name
	if name == "" {
		name = "grid"
	}
	start := time.Now()
	// A run starts when the longest run trained so far would still end within the budget
	// (each run of a learning-rate sweep counts alone). The first run always starts, so that
	// every call makes progress, even with a budget shorter than one run.
	var longest time.Duration
	trainedAny := false
	canStart := func() bool {
		return budget < 0 || !trainedAny || time.Since(start)+longest <= budget
	}
	progress := nbui.NewProgress(name, len(pts))
	res := &GridResult{Axes: g.Axes}
	done := 0
	chosen := map[string]float64{}
	runPoint := func(p point, wait bool) (Run, error) {
		status := func(step, steps int, what string) {
			progress.Update(done, fmt.Sprintf("%d/%d %s: step %d/%d %s", done+1, len(pts), p.label(g.Axes), step, steps, what))
		}
		o := runOptions{splits: []string{SplitValidation, SplitTest}, wait: wait, progress: status, allow: canStart,
			trained: func(d time.Duration) { longest, trainedAny = max(longest, d), true }}
		x := p.x
		if lrs := g.lrs(x); len(lrs) > 0 {
			lr, ok := chosen[p.sweepKey]
			if !ok {
				l, sweep, err := s.sweep(x, lrs, o)
				res.Sweeps = append(res.Sweeps, sweep...)
				if err != nil {
					return Run{}, err
				}
				lr = l
				chosen[p.sweepKey] = lr
			}
			x.LR = lr
		}
		return s.run(x, o)
	}
	runs := make([]*Run, len(pts))
	var busy []int
	for i, p := range pts {
		if !canStart() && !s.stored(p.x, g.lrs(p.x)) {
			continue
		}
		progress.Update(done, fmt.Sprintf("%d/%d %s", done+1, len(pts), p.label(g.Axes)))
		r, err := runPoint(p, false)
		switch {
		case errors.Is(err, errBusy):
			busy = append(busy, i)
			continue
		case errors.Is(err, errBudget):
			continue // pending: the next call continues here
		case err != nil && r.State != Failed:
			// A problem of the point's configuration or of the machine, not of its training:
			// keep it as a failed point so the grid carries on, but store nothing.
			r = Run{Name: p.label(g.Axes), Experiment: p.x, State: Failed, Error: err.Error()}
		}
		r.Point = p.labels
		runs[i] = &r
		done++
	}
	for _, i := range busy { // points another process trained (or is training): wait for them
		if !canStart() && !s.stored(pts[i].x, g.lrs(pts[i].x)) {
			continue
		}
		r, err := runPoint(pts[i], true)
		if errors.Is(err, errBudget) {
			continue
		}
		if err != nil && r.State != Failed {
			r = Run{Name: pts[i].label(g.Axes), Experiment: pts[i].x, State: Failed, Error: err.Error()}
		}
		r.Point = pts[i].labels
		runs[i] = &r
		done++
	}
	for _, r := range runs {
		if r == nil {
			res.Pending++
			continue
		}
		res.Runs = append(res.Runs, *r)
	}
	status := fmt.Sprintf("%d points", len(res.Runs))
	if f := len(res.Failed()); f > 0 {
		status += fmt.Sprintf(", %d failed", f)
	}
	if res.Pending > 0 {
		status += fmt.Sprintf("; stopped at the %s budget with %d points to go: run again to continue", budget, res.Pending)
	}
	progress.Update(done, status)
	progress.Done()
	return res, nil
}

// lrs are the learning rates swept for a point: its variant's, else the grid's.
func (g Grid) lrs(x Experiment) []float64 {
	if len(x.lrs) > 0 {
		return x.lrs
	}
	return g.LRs
}

// stored reports whether the experiment's run (with a sweep: its whole sweep) is complete in
// the store, so that a grid past its budget still collects it.
func (s *Store) stored(x Experiment, lrs []float64) bool {
	if len(lrs) > 0 {
		for _, lr := range lrs {
			x.LR = lr
			if !s.stored(x, nil) {
				return false
			}
		}
		return true
	}
	p, err := s.prepare(x)
	if err != nil {
		return false
	}
	st, _ := s.state(p.id)
	return st == Done || st == Failed
}

// Find returns the run at the point where axis has the given label (the first such point).
func (g *GridResult) Find(axis, label string) (Run, bool) {
	for _, r := range g.Runs {
		if r.Point[axis] == label {
			return r, true
		}
	}
	return Run{}, false
}

// Summaries returns the runs' summaries.
func Summaries(runs []Run) []Summary {
	out := make([]Summary, len(runs))
	for i, r := range runs {
		out[i] = r.Summary()
	}
	return out
}

// Where returns the part of the grid where axis has the given label, e.g. one task's runs
// for a heatmap of the others.
func (g *GridResult) Where(axis, label string) *GridResult {
	out := &GridResult{Axes: g.Axes}
	for _, r := range g.Runs {
		if r.Point[axis] == label {
			out.Runs = append(out.Runs, r)
		}
	}
	return out
}

// Stored collects the grid's points the store already holds, training nothing: for charts and
// tables over a grid that another cell (or another kernel) runs. Points not stored, or whose
// learning-rate sweep is not complete, count as Pending.
func (g Grid) Stored() (*GridResult, error) {
	s, pts, err := g.open()
	if err != nil {
		return nil, err
	}
	res := &GridResult{Axes: g.Axes}
	chosen := map[string]float64{}
	for _, p := range pts {
		x := p.x
		if lrs := g.lrs(x); len(lrs) > 0 {
			lr, ok := chosen[p.sweepKey]
			if !ok {
				if lr, ok = s.storedChoice(x, lrs); !ok {
					res.Pending++
					continue
				}
				chosen[p.sweepKey] = lr
			}
			x.LR = lr
		}
		r, ok := s.lookup(x)
		if !ok || !r.hasScores([]string{SplitTest}) {
			res.Pending++
			continue
		}
		r.Point = p.labels
		res.Runs = append(res.Runs, r)
	}
	return res, nil
}

// lookup returns the experiment's run when the store holds it complete (done or failed).
func (s *Store) lookup(x Experiment) (Run, bool) {
	p, err := s.prepare(x)
	if err != nil {
		return Run{}, false
	}
	if st, _ := s.state(p.id); st != Done && st != Failed {
		return Run{}, false
	}
	r, err := s.load(p)
	return r, err == nil
}

// storedChoice is the learning rate a complete stored sweep chose (the rule of sweep).
func (s *Store) storedChoice(x Experiment, lrs []float64) (float64, bool) {
	best, bestLR := -1.0, 0.0
	for _, lr := range lrs {
		x.LR = lr
		r, ok := s.lookup(x)
		if !ok {
			return 0, false
		}
		if v, ok := r.Scores[SplitValidation]; ok && r.State == Done && (v > best || (v == best && lr < bestLR)) {
			best, bestLR = v, lr
		}
	}
	return bestLR, best >= 0
}
