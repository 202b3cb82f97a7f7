package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gomlx/compute"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/eval"
	"github.com/peftlab/peftlab/pkg/internal/flock"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Run runs the experiment in the default store (DefaultStore): it returns the stored run when
// there is one, and otherwise trains it with a live progress display, scores it on the
// validation and test examples, and stores it.
func (x Experiment) Run() (Run, error) {
	s, err := DefaultStore()
	if err != nil {
		return Run{}, err
	}
	return s.Run(x)
}

// Run returns the experiment's run: from the store when it is there (Run.Reused), otherwise
// trained, scored on the validation and the test examples, and stored. When another process
// is training the same run, Run waits for it. A run whose training failed is stored as failed
// and returned with its error each time (Forget it to try again).
func (s *Store) Run(x Experiment) (Run, error) {
	return s.run(x, runOptions{splits: []string{SplitValidation, SplitTest}, wait: true, show: true})
}

// runOptions say how run works for its callers (Run, grids, sweeps).
type runOptions struct {
	// splits are scored by generation (a stored run missing one is scored now).
	splits []string
	// wait for another process training the run; without it run returns errBusy.
	wait bool
	// show the plan and a live progress display while training.
	show bool
	// progress, when set, receives the training steps instead (a grid's overall display).
	progress func(step, steps int, status string)
	// allow, when set, is asked before a run trains (a grid's time budget): false makes run
	// return errBudget instead. trained, when set, hears how long each run trained.
	allow   func() bool
	trained func(time.Duration)
}

// errBusy says another process is training the run; errBudget that a grid's budget is spent.
var (
	errBusy   = errors.New("another process is training this run")
	errBudget = errors.New("the time budget is spent")
)

// prepared is an experiment ready to run: resolved, identified, its run directory known.
type prepared struct {
	x        Experiment
	identity Identity
	id, dir  string
}

func (s *Store) prepare(x Experiment) (*prepared, error) {
	x, err := x.resolved(s.Fast)
	if err != nil {
		return nil, err
	}
	identity, err := s.identity(x)
	if err != nil {
		return nil, fmt.Errorf("experiment %s: %w", x.label(), err)
	}
	id := identity.ID()
	return &prepared{x: x, identity: identity, id: id, dir: s.runDir(id)}, nil
}

func (s *Store) run(x Experiment, o runOptions) (Run, error) {
	p, err := s.prepare(x)
	if err != nil {
		return Run{}, err
	}
	// The fast path: a complete run with every requested score is read without a lock.
	if st, _ := s.state(p.id); st == Done || st == Failed {
		r, err := s.load(p)
		if err == nil && r.hasScores(o.splits) {
			return r, r.err()
		}
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return Run{}, fmt.Errorf("run store: %w", err)
	}
	lock := filepath.Join(p.dir, lockFile)
	unlock, err := flock.TryLock(lock)
	if errors.Is(err, flock.ErrBusy) {
		if !o.wait {
			return Run{}, errBusy
		}
		fmt.Printf("%s: another process is training this run (%s); waiting for it\n", p.x.label(), p.id)
		unlock, err = flock.Lock(lock)
	}
	if err != nil {
		return Run{}, fmt.Errorf("run store: %w", err)
	}
	defer unlock()

	switch st, status := s.state(p.id); st {
	case Done, Failed:
		r, err := s.load(p)
		if err != nil {
			return Run{}, err
		}
		if r.State == Done && !r.hasScores(o.splits) {
			if err := s.scoreStored(p, &r, o.splits); err != nil {
				return r, err
			}
		}
		return r, r.err()
	default:
		if status.State != "" {
			fmt.Printf("%s: run %s was interrupted at step %d of %d; training it again from the start\n",
				p.x.label(), p.id, status.Step, status.Steps)
		}
		if err := clearRun(p.dir); err != nil {
			return Run{}, fmt.Errorf("run store: clearing interrupted run %s: %w", p.id, err)
		}
	}
	if o.allow != nil && !o.allow() {
		return Run{}, errBudget
	}
	if s.OnTrain != nil {
		s.OnTrain(p.id)
	}
	t0 := time.Now()
	r, err := s.train(p, o)
	if o.trained != nil {
		o.trained(time.Since(t0))
	}
	return r, err
}

// hasScores reports whether the run holds a score for each split.
func (r Run) hasScores(splits []string) bool {
	if r.State == Failed {
		return true // a failed run is final
	}
	for _, sp := range splits {
		if _, ok := r.Scores[sp]; !ok {
			return false
		}
	}
	return true
}

// err is the error of a failed run.
func (r Run) err() error {
	if r.State == Failed {
		return fmt.Errorf("run %s (%s) failed: %s", r.Name, r.ID, r.Error)
	}
	return nil
}

// loaded is a base, a task and the experiment's adapters, ready to train or score.
type loaded struct {
	base    *bases.Base
	task    *tasks.Task
	source  *tasks.Source
	model   *peft.Model
	names   []string
	backend compute.Backend
}

func (s *Store) loadBase(name string) (*bases.Base, error) {
	if s.LoadBase != nil {
		return s.LoadBase(name)
	}
	return bases.Load(name)
}

func (s *Store) loadTask(name string) (*tasks.Task, error) {
	if s.LoadTask != nil {
		return s.LoadTask(name)
	}
	return tasks.Load(name, tasks.DefaultOptions())
}

// open loads what the experiment needs. With fromDir set, the adapters are read from a
// stored run's adapter files (frozen) instead of being created.
func (s *Store) open(x Experiment, fromDir string) (*loaded, error) {
	base, err := s.loadBase(x.Base)
	if err != nil {
		return nil, err
	}
	full, err := s.loadTask(x.Task)
	if err != nil {
		return nil, err
	}
	task := *full // a copy to cut
	if x.Validation > 0 {
		task.Validation = task.Validation[:min(len(task.Validation), x.Validation)]
	}
	if x.Test > 0 {
		task.Test = task.Test[:min(len(task.Test), x.Test)]
	}
	maxLen := base.Config.MaxLen
	if x.MaxLen > 0 {
		maxLen = min(maxLen, x.MaxLen)
	}
	maxLen = min(maxLen, base.Config.MaxLen-virtualTokens(x.Methods))
	src, err := tasks.NewSource(base.Tokenizer, tasks.BatchOptions{MaxLen: maxLen, Objective: trainer.LanguageModel}, &task)
	if err != nil {
		return nil, err
	}
	l := &loaded{base: base, task: &task, source: src, names: adapterNames(x.Methods)}
	if len(x.Methods) > 0 {
		adapters := make([]peft.Adapter, len(x.Methods))
		for i, m := range x.Methods {
			adapters[i] = peft.Adapter{Name: l.names[i], Method: m}
			if fromDir != "" {
				a, err := peft.LoadAdapter(filepath.Join(fromDir, adaptersDir, l.names[i]), base.Scope, base.Config.Layout())
				if err != nil {
					return nil, err
				}
				adapters[i] = a
			}
		}
		if l.model, err = peft.New(base.Config.Layout(), adapters...); err != nil {
			return nil, err
		}
	}
	if s.Backend == nil {
		if s.Backend, err = backend.New(); err != nil {
			return nil, err
		}
	}
	l.backend = s.Backend
	return l, nil
}

// virtualTokens is how many positions prompt-tuning methods add to the text.
func virtualTokens(methods []peft.Method) int {
	n := 0
	for _, m := range methods {
		if c, ok := derefMethod(m).(prompt.Config); ok {
			n += c.Tokens
		}
	}
	return n
}

// train trains and scores a run whose directory is empty but for its lock, which the caller
// holds, writing each file atomically and done.json last.
func (s *Store) train(p *prepared, o runOptions) (Run, error) {
	x := p.x
	cfg := runConfig{ID: p.id, Name: x.label(), Identity: p.identity}
	if err := writeJSON(filepath.Join(p.dir, configFile), cfg); err != nil {
		return Run{}, fmt.Errorf("run store: %w", err)
	}
	hb := startHeartbeat(filepath.Join(p.dir, statusFile), x.Steps)
	r := Run{Name: x.label(), ID: p.id, Dir: p.dir, Experiment: x}
	fail := func(err error) (Run, error) {
		hb.stop(Failed, err.Error())
		r.State, r.Error = Failed, err.Error()
		if werr := s.finish(p, &r, nil); werr != nil {
			return r, errors.Join(err, werr)
		}
		return r, fmt.Errorf("run %s (%s): %w", r.Name, r.ID, err)
	}
	l, err := s.open(x, "")
	if err != nil {
		hb.stop(Interrupted, err.Error())
		// Nothing trained: leave no trace, the cause (a missing data set) is not the run's.
		_ = clearRun(p.dir)
		return Run{}, fmt.Errorf("experiment %s: %w", x.label(), err)
	}
	r.Metric = l.task.Metric
	if l.model != nil {
		r.Plan = PlanRow(x.label(), l.model)
		if o.show {
			ShowPlan(l.model.Plan())
		}
		tr, err := trainer.New(l.backend, l.base.Scope, l.base.Config, l.model, x.Training())
		if err != nil {
			return fail(err)
		}
		tr.OnStep = func(sp trainer.StepPoint) { hb.step(sp.Step + 1) }
		tr.OnEval = func(trainer.EvalPoint) {
			_ = writeJSON(filepath.Join(p.dir, recordFile), tr.Record()) // metrics over time
		}
		var rec *trainer.Record
		if o.progress != nil {
			rec, err = watchWith(tr, l.source, o.progress)
		} else {
			var trained Run
			trained, err = Train(tr, l.source, x.label())
			rec = trained.Record
		}
		r.Record = rec
		if err != nil {
			return fail(err)
		}
	}
	answers := map[string][]string{}
	if err := s.score(l, &r, answers, o.splits); err != nil {
		return fail(err)
	}
	if l.model != nil {
		for _, name := range l.names {
			if err := peft.SaveAdapter(filepath.Join(p.dir, adaptersDir, name), l.base.Scope, l.model, name); err != nil {
				return fail(err)
			}
		}
	}
	r.State = Done
	if err := s.finish(p, &r, answers); err != nil {
		hb.stop(Interrupted, err.Error())
		return r, err
	}
	hb.stop(Done, "")
	return r, nil
}

// score scores r on splits by generation, with the model in l.
func (s *Store) score(l *loaded, r *Run, answers map[string][]string, splits []string) error {
	g := eval.Generator{Backend: l.backend, Ctx: l.base.Scope, Base: l.base.Config, Tokenizer: l.base.Tokenizer, Source: l.source}
	if l.model != nil {
		g.Hook = l.model
	}
	if r.Scores == nil {
		r.Scores = map[string]float64{}
	}
	for _, sp := range splits {
		examples, err := l.task.Split(sp)
		if err != nil {
			return err
		}
		if len(examples) == 0 {
			continue
		}
		metric, score, ans, err := g.Score(l.task, examples)
		if err != nil {
			return err
		}
		r.Metric, r.Scores[sp], answers[sp] = metric, score, ans
		if sp == SplitTest {
			r.Score = score
		}
	}
	return nil
}

// scoreStored adds scores for the missing splits to a stored run, from its adapter files.
func (s *Store) scoreStored(p *prepared, r *Run, splits []string) error {
	var missing []string
	for _, sp := range splits {
		if _, ok := r.Scores[sp]; !ok {
			missing = append(missing, sp)
		}
	}
	l, err := s.open(p.x, p.dir)
	if err != nil {
		return fmt.Errorf("scoring stored run %s: %w", p.id, err)
	}
	answers := map[string][]string{}
	_ = readJSON(filepath.Join(p.dir, answersFile), &answers)
	if err := s.score(l, r, answers, missing); err != nil {
		return fmt.Errorf("scoring stored run %s: %w", p.id, err)
	}
	if err := writeJSON(filepath.Join(p.dir, answersFile), answers); err != nil {
		return err
	}
	return writeJSON(filepath.Join(p.dir, summaryFile), summaryOf(p, r))
}

// summaryOf is the summary.json of a run: its Summary with what only the store knows.
func summaryOf(p *prepared, r *Run) Summary {
	r.adapterBytes = dirSize(filepath.Join(p.dir, adaptersDir))
	sum := r.Summary()
	sum.Fast = p.identity.Fast
	return sum
}

// finish writes a trained (or failed) run's files, done.json last.
func (s *Store) finish(p *prepared, r *Run, answers map[string][]string) error {
	if r.Record != nil {
		if err := writeJSON(filepath.Join(p.dir, recordFile), r.Record); err != nil {
			return err
		}
	}
	if answers != nil {
		if err := writeJSON(filepath.Join(p.dir, answersFile), answers); err != nil {
			return err
		}
	}
	if err := writeJSON(filepath.Join(p.dir, summaryFile), summaryOf(p, r)); err != nil {
		return err
	}
	return writeJSON(filepath.Join(p.dir, doneFile), map[string]any{"id": p.id, "state": r.State, "finished": time.Now().UTC()})
}

// load reads a complete run.
func (s *Store) load(p *prepared) (Run, error) {
	var sum Summary
	if err := readJSON(filepath.Join(p.dir, summaryFile), &sum); err != nil {
		return Run{}, fmt.Errorf("run store: run %s: %w", p.id, err)
	}
	r := Run{Name: sum.Name, ID: p.id, Dir: p.dir, Experiment: p.x, Metric: sum.Metric, Scores: sum.Scores,
		State: sum.State, Error: sum.Error, Plan: sum.Plan, Reused: true, adapterBytes: sum.AdapterBytes}
	if p.x.Name != "" {
		r.Name = p.x.Name
	}
	r.Score = sum.Scores[SplitTest]
	var rec trainer.Record
	if err := readJSON(filepath.Join(p.dir, recordFile), &rec); err == nil {
		r.Record = &rec
	}
	return r, nil
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// heartbeat keeps status.json fresh while a run trains.
type heartbeat struct {
	mu    sync.Mutex
	st    Status
	quit  chan struct{}
	wg    sync.WaitGroup
	write func(Status)
}

func startHeartbeat(path string, steps int) *heartbeat {
	host, _ := os.Hostname()
	now := time.Now().UTC()
	h := &heartbeat{quit: make(chan struct{}),
		st: Status{State: Running, PID: os.Getpid(), Host: host, Started: now, Heartbeat: now, Steps: steps}}
	h.write = func(st Status) { _ = writeJSON(path, st) }
	h.write(h.st)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		t := time.NewTicker(heartbeatEvery)
		defer t.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-t.C:
				h.mu.Lock()
				h.st.Heartbeat = time.Now().UTC()
				h.write(h.st)
				h.mu.Unlock()
			}
		}
	}()
	return h
}

// step records a finished step, and writes the status at the first step and then at most
// once a second, so that listings see progress between heartbeats.
func (h *heartbeat) step(n int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.Step = n
	if now := time.Now().UTC(); now.Sub(h.st.Heartbeat) >= time.Second || n == 1 {
		h.st.Heartbeat = now
		h.write(h.st) // under the lock, so that writes never go back in time
	}
}

// stop ends the heartbeat with a final state.
func (h *heartbeat) stop(state State, msg string) {
	close(h.quit)
	h.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.st.State, h.st.Error, h.st.Heartbeat = state, msg, time.Now().UTC()
	h.write(h.st)
}

// watchWith runs tr on src, reporting its steps to progress (a grid's overall display)
// instead of a display of its own.
func watchWith(tr *trainer.Trainer, src trainer.Source, progress func(step, steps int, status string)) (*trainer.Record, error) {
	onStep := tr.OnStep
	tr.OnStep = func(sp trainer.StepPoint) {
		if onStep != nil {
			onStep(sp)
		}
		progress(sp.Step+1, tr.Config().Steps, fmt.Sprintf("loss %.4g", sp.Loss))
	}
	return tr.Run(src)
}

// Answers returns the answers a stored run generated on a split (SplitTest, SplitValidation).
func (r Run) Answers(split string) ([]string, error) {
	var answers map[string][]string
	if err := readJSON(filepath.Join(r.Dir, answersFile), &answers); err != nil {
		return nil, fmt.Errorf("answers of run %s: %w", r.ID, err)
	}
	a, ok := answers[split]
	if !ok {
		return nil, fmt.Errorf("run %s has no %s answers", r.ID, split)
	}
	return a, nil
}

// Reload loads a stored run's adapter files onto a fresh copy of its base (nothing of the
// training process is reused) and generates its answers on a split again: the check that
// the files alone reproduce the trained model. The answers must equal Run.Answers.
func (s *Store) Reload(r Run, split string) ([]string, error) {
	if r.Dir == "" || r.State != Done {
		return nil, fmt.Errorf("reload: %s is not a completed stored run", r.Name)
	}
	l, err := s.open(r.Experiment, r.Dir)
	if err != nil {
		return nil, fmt.Errorf("reload %s: %w", r.Name, err)
	}
	var fresh Run
	answers := map[string][]string{}
	if err := s.score(l, &fresh, answers, []string{split}); err != nil {
		return nil, fmt.Errorf("reload %s: %w", r.Name, err)
	}
	return answers[split], nil
}

// AdapterDir is the directory of a stored run's adapter of the given peft_type
// ("ADALINK"), the first when the run has several; "" when it has none.
func (r Run) AdapterDir(peftType string) string {
	for i, m := range r.Experiment.Methods {
		if m.Type() == peftType {
			return filepath.Join(r.Dir, adaptersDir, adapterNames(r.Experiment.Methods)[i])
		}
	}
	return ""
}
