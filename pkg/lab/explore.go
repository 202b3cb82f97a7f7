package lab

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// Explorer shows the points of grids one at a time, from their store: controls for the grids'
// axes (a slider over the ranks, a select for every other axis: method, placement, targets,
// seed...) and, beside them, the selected point's plan row, scores, loss curves, a few test
// examples with the answers the run generated, and its place on the Pareto chart of every
// stored run of the same base and task. Changing a control shows the stored run at once; a
// point the store does not hold trains when asked (the Train button, with a live progress
// display), is stored, and joins the chart. Pinning a point compares it with the selected one
// side by side: scores, curves and the test examples they answer differently.
//
// The explorer reads the store exactly as the grids write it: a point's run is the one its
// grid stores there, and with a learning-rate sweep (Grid.LRs, Variant.LRs) the one at the
// rate the sweep chose on validation with the grid's first seed; a point trained here is the
// run the grid would train. It never trains anything unless asked.
//
// Controls need a live front end: a browser showing the notebook while its cell runs. The
// cell then keeps running, serving the page, until Close is pressed, the explorer is idle for
// Idle, or the cell is interrupted; it then leaves a static view of its last state in the
// cell, so the saved notebook and its HTML export show it. Where no page can answer, the
// explorer never shows controls (they would wait for the page forever) and renders the static
// view at once: the selected point and the Pareto chart of the store. That is the case under
// `go run ./kernel exec` (mode.Headless), when no page answers within a few seconds (a plain
// nbconvert run, an old front end), and outside a notebook, where the view prints as text.
type Explorer struct {
	// Grids are the ablations to explore, the first one shown first; with several, a
	// control chooses among them (e.g. the AdaLink and the LoRA grid of one task).
	Grids []Grid
	// Select picks the first point: axis name to value label ({"rank": "16"}); axes it does
	// not name start at their first value.
	Select map[string]string
	// Examples is how many test examples the view shows; 0 takes 4.
	Examples int
	// Idle ends a live explorer after this long without use; 0 takes DefaultIdle, negative
	// never.
	Idle time.Duration
	// Store, when set, holds the runs of every grid; nil takes each grid's Store, or
	// DefaultStore.
	Store *Store
}

// DefaultIdle is how long a live explorer waits for its next use before it ends with its
// static view: the cell of a live explorer keeps the kernel busy, and one forgotten must not
// hold it forever.
const DefaultIdle = 30 * time.Minute

// DefaultExamples is how many test examples an explorer shows by default.
const DefaultExamples = 4

// Explore shows an explorer of the grids (see Explorer) and returns when it ends:
//
//	lab.Check(lab.Explore(adalinkGrid, loraGrid))
func Explore(grids ...Grid) error { return Explorer{Grids: grids}.Show() }

// Show shows the explorer (see Explorer) and returns when it ends.
func (e Explorer) Show() error {
	x, err := newExplorer(e)
	if err != nil {
		return err
	}
	return x.show()
}

// explorer is an Explorer at work: its grids, what is selected and pinned, and caches of what
// it read from the stores.
type explorer struct {
	e      Explorer
	grids  []*xgrid
	cur    int    // the grid shown
	pin    *xsel  // the pinned point, nil when none
	note   string // a message for the next view (a training that failed...)
	tasks  map[string]*tasks.Task
	plans  map[string][]string // plan rows of points not trained yet, by experiment label and base
	status string              // "training" while a point trains
	lastN  int                 // the counter of the last page message applied (see accept)
}

// xgrid is one grid of an explorer.
type xgrid struct {
	g     Grid
	store *Store
	sel   []int              // the selected value of each axis
	cache map[string]*xpoint // points read from the store, by index key
}

// xsel is one point of one grid.
type xsel struct {
	grid int
	idx  []int
}

func newExplorer(e Explorer) (*explorer, error) {
	if len(e.Grids) == 0 {
		return nil, errors.New("explorer: no grid to explore")
	}
	if e.Examples == 0 {
		e.Examples = DefaultExamples
	}
	x := &explorer{e: e, tasks: map[string]*tasks.Task{}, plans: map[string][]string{}}
	var def *Store
	names := map[string]bool{}
	for i, g := range e.Grids {
		s := e.Store
		if s == nil {
			s = g.Store
		}
		if s == nil {
			if def == nil {
				var err error
				if def, err = DefaultStore(); err != nil {
					return nil, err
				}
			}
			s = def
		}
		if g.Name == "" {
			g.Name = fmt.Sprintf("grid %d", i+1)
		}
		if names[g.Name] {
			return nil, fmt.Errorf("explorer: two grids are named %q", g.Name)
		}
		names[g.Name] = true
		xg := &xgrid{g: g, store: s, sel: make([]int, len(g.Axes)), cache: map[string]*xpoint{}}
		seen := map[string]bool{}
		for a, axis := range g.Axes {
			if axis.set == nil || len(axis.Labels) == 0 {
				return nil, fmt.Errorf("explorer: grid %s: axis %q has no values", g.Name, axis.Name)
			}
			if seen[axis.Name] {
				return nil, fmt.Errorf("explorer: grid %s: two axes are named %q", g.Name, axis.Name)
			}
			seen[axis.Name] = true
			if want, ok := e.Select[axis.Name]; ok {
				i := slices.Index(axis.Labels, want)
				if i < 0 {
					return nil, fmt.Errorf("explorer: grid %s: axis %s has no value %q (it has %s)", g.Name, axis.Name, want, strings.Join(axis.Labels, ", "))
				}
				xg.sel[a] = i
			}
		}
		x.grids = append(x.grids, xg)
	}
	for name := range e.Select {
		found := false
		for _, g := range x.grids {
			found = found || slices.ContainsFunc(g.g.Axes, func(a Axis) bool { return a.Name == name })
		}
		if !found {
			return nil, fmt.Errorf("explorer: Select names the axis %q, which no grid has", name)
		}
	}
	return x, nil
}

// pointAt is the grid's point at the given value index of each axis: the grid's experiment
// with each axis applied in order, as Grid.Run's points are (see points).
func (g Grid) pointAt(idx []int) (point, error) {
	if len(idx) != len(g.Axes) {
		return point{}, fmt.Errorf("grid %s: %d axis values for %d axes", g.Name, len(idx), len(g.Axes))
	}
	p := point{labels: map[string]string{}, x: g.Experiment}
	p.x.Methods = slices.Clone(g.Experiment.Methods)
	for a, axis := range g.Axes {
		i := idx[a]
		if i < 0 || i >= len(axis.Labels) {
			return point{}, fmt.Errorf("grid %s: axis %s has no value %d", g.Name, axis.Name, i)
		}
		p.labels[axis.Name] = axis.Labels[i]
		if err := axis.set(&p.x, i); err != nil {
			return p, fmt.Errorf("%s = %s: %w", axis.Name, axis.Labels[i], err)
		}
		if !axis.seed {
			p.sweepKey += axis.Name + "=" + axis.Labels[i] + ";"
		}
	}
	return p, nil
}

// pointState is where a point stands in the store.
type pointState string

const (
	pointStored  pointState = "stored"  // its run is complete: shown from the store
	pointFailed  pointState = "failed"  // its run (or every run of its sweep) failed
	pointMissing pointState = "missing" // the store lacks (part of) it: it trains on request
	pointBusy    pointState = "busy"    // another process is training (part of) it
	pointInvalid pointState = "invalid" // the axes' values do not combine (no rank to set...)
)

// xpoint is a grid point as the store holds it.
type xpoint struct {
	sel    xsel
	labels map[string]string
	key    string // the labels but the seed, as charts and tables group runs ("placement=text rank=4")
	x      Experiment
	lrs    []float64
	first  Experiment // the experiment whose sweep chooses the learning rate (the first seed's)
	state  pointState
	why    string  // what the store lacks, or why the point is invalid or failed
	lr     float64 // the learning rate chosen on validation (with a sweep; 0 before)
	sum    Summary // the run's summary, when stored or failed
	sweep  []Summary
}

// idxKey names a selection in caches.
func idxKey(idx []int) string { return fmt.Sprint(idx) }

// point reads the point at idx from the store (cached until the grid's runs change).
func (xg *xgrid) point(grid int, idx []int) *xpoint {
	k := idxKey(idx)
	if p, ok := xg.cache[k]; ok {
		return p
	}
	p := xg.resolve(grid, idx)
	xg.cache[k] = p
	return p
}

// resolve finds the point's run in the store without training anything, as Grid.Run would
// find it: with a sweep, the learning rate is the best on validation among the stored runs of
// the grid's first seed, and the point's run is the one at that rate.
func (xg *xgrid) resolve(grid int, idx []int) *xpoint {
	g := xg.g
	xp := &xpoint{sel: xsel{grid: grid, idx: slices.Clone(idx)}}
	p, err := g.pointAt(idx)
	xp.labels, xp.key = p.labels, pointKey(p.labels, "seed")
	if err != nil {
		xp.state, xp.why = pointInvalid, err.Error()
		return xp
	}
	xp.x, xp.lrs = p.x, g.lrs(p.x)
	xp.first = p.x
	if len(xp.lrs) > 0 {
		firstIdx := slices.Clone(idx)
		for a, axis := range g.Axes {
			if axis.seed {
				firstIdx[a] = 0
			}
		}
		fp, err := g.pointAt(firstIdx)
		if err != nil {
			xp.state, xp.why = pointInvalid, err.Error()
			return xp
		}
		xp.first = fp.x
		lr, sweep, state, why, err := xg.store.probeSweep(fp.x, xp.lrs)
		xp.sweep = sweep
		switch {
		case err != nil:
			xp.state, xp.why = pointInvalid, err.Error()
			return xp
		case state != pointStored:
			xp.state, xp.why = state, why
			return xp
		}
		xp.lr, xp.x.LR = lr, lr
	}
	sum, state, why, err := xg.store.probe(xp.x, []string{SplitValidation, SplitTest})
	if err != nil {
		xp.state, xp.why = pointInvalid, err.Error()
		return xp
	}
	xp.sum, xp.state, xp.why = sum, state, why
	return xp
}

// probe finds an experiment's run in the store without training: stored when it is complete
// with a score for each split, failed when it failed, busy when another process trains it,
// else missing with what is missing. The error says the experiment cannot run at all.
func (s *Store) probe(x Experiment, splits []string) (Summary, pointState, string, error) {
	p, err := s.prepare(x)
	if err != nil {
		return Summary{}, pointInvalid, "", err
	}
	if _, err := os.Stat(p.dir); err != nil {
		return Summary{}, pointMissing, "not trained yet", nil
	}
	sum, err := s.Summary(p.id)
	if err != nil {
		return Summary{}, pointMissing, "not trained yet", nil // a directory being created
	}
	switch sum.State {
	case Failed:
		return sum, pointFailed, sum.Error, nil
	case Done:
		for _, sp := range splits {
			if _, ok := sum.Scores[sp]; !ok {
				return sum, pointMissing, "trained, not scored on the " + sp + " split yet", nil
			}
		}
		return sum, pointStored, "", nil
	case Running:
		return sum, pointBusy, fmt.Sprintf("another process is training it (step %d of %d)", sum.Step, sum.Steps), nil
	}
	return sum, pointMissing, fmt.Sprintf("interrupted at step %d of %d: it trains again from the start", sum.Step, sum.Steps), nil
}

// probeSweep finds the learning rate a sweep of x over lrs chose (see Store.sweep), read from the
// store: the best validation score, the smaller rate on a tie, failed rates losing. The state
// is pointStored when every rate's run is there.
func (s *Store) probeSweep(x Experiment, lrs []float64) (float64, []Summary, pointState, string, error) {
	var runs []Summary
	best, bestLR := -1.0, 0.0
	var missing []string
	busy := ""
	firstErr := ""
	for _, lr := range lrs {
		x.LR = lr
		sum, state, why, err := s.probe(x, []string{SplitValidation})
		if err != nil {
			return 0, runs, pointInvalid, "", err
		}
		switch state {
		case pointMissing:
			missing = append(missing, fmtLR(lr))
			continue
		case pointBusy:
			busy = fmt.Sprintf("learning rate %s: %s", fmtLR(lr), why)
			continue
		case pointFailed:
			runs = append(runs, sum)
			if firstErr == "" {
				firstErr = why
			}
			continue
		}
		runs = append(runs, sum)
		if v := sum.Scores[SplitValidation]; v > best || (v == best && lr < bestLR) {
			best, bestLR = v, lr
		}
	}
	switch {
	case busy != "":
		return 0, runs, pointBusy, busy, nil
	case len(missing) > 0:
		return 0, runs, pointMissing, "the learning-rate sweep lacks its run at " + strings.Join(missing, ", "), nil
	case best < 0:
		return 0, runs, pointFailed, "every learning rate of the sweep failed: " + firstErr, nil
	}
	return bestLR, runs, pointStored, "", nil
}

// fmtLR formats a learning rate as the axes label them.
func fmtLR(lr float64) string { return fmt.Sprintf("%g", lr) }

// selected is the point the explorer shows.
func (x *explorer) selected() *xpoint {
	g := x.grids[x.cur]
	return g.point(x.cur, g.sel)
}

// pinned is the pinned point, or nil.
func (x *explorer) pinned() *xpoint {
	if x.pin == nil {
		return nil
	}
	return x.grids[x.pin.grid].point(x.pin.grid, x.pin.idx)
}

// choose selects a grid and a value of each of its axes (what the page's controls say).
func (x *explorer) choose(grid int, idx []int) error {
	if grid < 0 || grid >= len(x.grids) {
		return fmt.Errorf("explorer: no grid %d", grid)
	}
	g := x.grids[grid]
	if len(idx) != len(g.g.Axes) {
		return fmt.Errorf("explorer: grid %s has %d axes, got %d values", g.g.Name, len(g.g.Axes), len(idx))
	}
	for a, i := range idx {
		if i < 0 || i >= len(g.g.Axes[a].Labels) {
			return fmt.Errorf("explorer: axis %s has no value %d", g.g.Axes[a].Name, i)
		}
	}
	x.cur = grid
	copy(g.sel, idx)
	return nil
}

// run loads the complete run of a stored (or failed) point, with its record.
func (xg *xgrid) run(p *xpoint) (Run, error) {
	pr, err := xg.store.prepare(p.x)
	if err != nil {
		return Run{}, err
	}
	r, err := xg.store.load(pr)
	if err != nil {
		return Run{}, err
	}
	r.Point = p.labels
	return r, nil
}

// train trains the selected point as its grid would (the sweep of the first seed, then the
// point at the chosen rate), reporting to progress, and forgets what the explorer read from
// the store, which changed.
func (x *explorer) train(progress func(step, steps int, status string)) error {
	g := x.grids[x.cur]
	p := x.selected()
	switch p.state {
	case pointInvalid:
		return fmt.Errorf("%s cannot run: %s", p.key, p.why)
	case pointStored:
		return nil
	}
	defer func() {
		for _, xg := range x.grids {
			xg.cache = map[string]*xpoint{}
		}
	}()
	o := runOptions{splits: []string{SplitValidation, SplitTest}, wait: true, progress: progress}
	xp := p.x
	if len(p.lrs) > 0 {
		lr, _, err := g.store.sweep(p.first, p.lrs, o)
		if err != nil {
			return err
		}
		xp.LR = lr
	}
	_, err := g.store.run(xp, o)
	return err
}

// paretoSummaries are the runs of the Pareto chart: every complete run of the store scored on
// the test split with the same base and task as the point, in the store's mode, each grid
// point's run labelled with its point (so that seeds group into one configuration).
func (x *explorer) paretoSummaries(p *xpoint) ([]Summary, error) {
	g := x.grids[p.sel.grid]
	all, err := g.store.List()
	if err != nil {
		return nil, err
	}
	labels := map[string]map[string]string{}
	for gi, xg := range x.grids {
		if xg.store.Dir() != g.store.Dir() {
			continue
		}
		for _, idx := range xg.allIndices() {
			q := xg.point(gi, idx)
			if q.state == pointStored && q.x.Base == p.x.Base && q.x.Task == p.x.Task {
				l := maps.Clone(q.labels)
				if len(x.grids) > 1 {
					l["grid"] = xg.g.Name
				}
				labels[q.sum.ID] = l
			}
		}
	}
	var out []Summary
	for _, s := range all {
		if s.State != Done || s.Fast != g.store.Fast || s.Base != p.x.Base || s.Task != p.x.Task {
			continue
		}
		if _, ok := s.Scores[SplitTest]; !ok {
			continue
		}
		s.Point = labels[s.ID]
		out = append(out, s)
	}
	return out, nil
}

// allIndices lists the value indices of every point of the grid, the last axis fastest.
func (xg *xgrid) allIndices() [][]int {
	out := [][]int{{}}
	for _, a := range xg.g.Axes {
		var next [][]int
		for _, idx := range out {
			for i := range a.Labels {
				next = append(next, append(slices.Clone(idx), i))
			}
		}
		out = next
	}
	return out
}

// groupKey is the key Pareto gives the point's configuration.
func (x *explorer) groupKey(p *xpoint) string {
	l := maps.Clone(p.labels)
	if len(x.grids) > 1 {
		l["grid"] = x.grids[p.sel.grid].g.Name
	}
	return displayKey(Summary{Point: l})
}

// task loads a task once per explorer.
func (x *explorer) task(s *Store, name string) (*tasks.Task, error) {
	if t, ok := x.tasks[name]; ok {
		return t, nil
	}
	t, err := s.loadTask(name)
	if err != nil {
		return nil, err
	}
	x.tasks[name] = t
	return t, nil
}

// planRow is what a point would train (PlanRow), for a point not trained yet: the store's
// runs carry theirs.
func (x *explorer) planRow(s *Store, xp Experiment) ([]string, error) {
	k := xp.Base + "|" + xp.label()
	if row, ok := x.plans[k]; ok {
		return row, nil
	}
	if len(xp.Methods) == 0 {
		return nil, nil
	}
	b, err := s.loadBase(xp.Base)
	if err != nil {
		return nil, err
	}
	adapters := make([]peft.Adapter, len(xp.Methods))
	for i, name := range adapterNames(xp.Methods) {
		adapters[i] = peft.Adapter{Name: name, Method: xp.Methods[i]}
	}
	m, err := peft.New(b.Config.Layout(), adapters...)
	if err != nil {
		return nil, err
	}
	row := PlanRow(xp.label(), m)
	x.plans[k] = row
	return row, nil
}

// progressFor returns a progress display of a training of n runs of steps each, and the
// callback the store's runs report to: the steps of the runs one after the other (a run's
// first step after another's last moves on to the next run).
func progressFor(name string, runs, steps int) (*nbui.Progress, func(step, steps int, status string)) {
	p := nbui.NewProgress(name, runs*steps)
	k, last := 0, 0
	return p, func(step, total int, status string) {
		if step < last {
			k++
		}
		last = step
		done := min(k*steps+step, runs*steps)
		if runs > 1 {
			status = fmt.Sprintf("run %d of %d · %s", min(k+1, runs), runs, status)
		}
		p.Update(done, status)
	}
}

// toTrain counts the runs that training the point would train, and their steps.
func (x *explorer) toTrain(p *xpoint) (runs, steps int) {
	g := x.grids[p.sel.grid]
	rx, err := p.x.resolved(g.store.Fast)
	if err == nil {
		steps = rx.Steps
	}
	if len(p.lrs) == 0 {
		return 1, steps
	}
	for _, lr := range p.lrs {
		f := p.first
		f.LR = lr
		if _, st, _, _ := g.store.probe(f, []string{SplitValidation}); st != pointStored && st != pointFailed {
			runs++
		}
	}
	// The chosen rate's run of another seed than the first trains too.
	if !slices.Equal(p.sel.idx, x.firstSeed(p)) {
		runs++
	}
	return max(runs, 1), steps
}

// firstSeed is the point's selection with the seed axis at its first value.
func (x *explorer) firstSeed(p *xpoint) []int {
	idx := slices.Clone(p.sel.idx)
	for a, axis := range x.grids[p.sel.grid].g.Axes {
		if axis.seed {
			idx[a] = 0
		}
	}
	return idx
}
