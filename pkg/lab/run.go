package lab

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/trainer"
)

// Run is one finished (or stopped) training run as the notebook shows it: a name for charts
// and tables, the trainer's record, and the task metric when the run was scored. A Run with
// a score but no record stands for a reference without training (the untuned base, always
// giving the majority answer). Runs of an Experiment live in a Store, which carries them from
// one notebook cell to the next.
type Run struct {
	Name   string          `json:"name"`
	Record *trainer.Record `json:"record,omitempty"`
	// Metric names the task metric Score holds ("accuracy", "cider-d"); empty when the run
	// was not scored.
	Metric string  `json:"metric,omitempty"`
	Score  float64 `json:"score,omitempty"`

	// The fields below are set on runs of an Experiment (Store.Run, grids, sweeps).

	// ID is the run's id in its store and Dir its directory there.
	ID  string `json:"id,omitempty"`
	Dir string `json:"-"`
	// Experiment is the experiment as it ran: defaults filled in, fast mode applied.
	Experiment Experiment `json:"-"`
	// Scores holds the task metric by split (SplitValidation, SplitTest); Score is the test
	// score.
	Scores map[string]float64 `json:"scores,omitempty"`
	// State is Done or Failed, with Error saying why a run failed.
	State State  `json:"state,omitempty"`
	Error string `json:"error,omitempty"`
	// Plan is the run's PlanRow: methods, where they act, what trains.
	Plan []string `json:"plan,omitempty"`
	// Reused is true when the run came from the store, without training.
	Reused bool `json:"-"`
	// Point holds a grid's axis labels for this run (see Summary.Point).
	Point map[string]string `json:"-"`

	adapterBytes int64
}

// Summary sums the run up in the form listings and charts read (see Summary).
func (r Run) Summary() Summary {
	x := r.Experiment
	specs, _ := specsOf(x.Methods)
	s := Summary{ID: r.ID, Name: r.Name, Base: x.Base, Task: x.Task, State: r.State, Error: r.Error,
		Methods: specs, LR: x.LR, Seed: x.Seed, Steps: x.Steps, BatchSize: x.BatchSize,
		Validation: x.Validation, Test: x.Test, MaxLen: x.MaxLen,
		Metric: r.Metric, Scores: r.Scores, Plan: r.Plan, AdapterBytes: r.adapterBytes, Point: r.Point}
	s.Method, s.Rank, s.Placement = describeMethods(specs)
	if len(x.Methods) == 0 {
		s.Steps, s.BatchSize, s.LR = 0, 0, 0
	}
	if rec := r.Record; rec != nil {
		s.Trainable, s.Total = rec.TrainableParams, rec.PlannedTotal
		s.StepSeconds = r.StepTime().Seconds()
		for _, p := range rec.Steps {
			s.TrainSeconds += p.Seconds
		}
		if e, ok := r.LastEval(); ok {
			s.EvalLoss = e.Loss
		}
		s.Finished = rec.Finished
	}
	return s
}

// StepTime is the median time of a training step, leaving out the first step, which
// includes building and compiling the graph. The median rather than the mean, because on a
// shared machine a few steps stall. 0 when the run has fewer than two steps.
func (r Run) StepTime() time.Duration {
	if r.Record == nil || len(r.Record.Steps) < 2 {
		return 0
	}
	s := make([]float64, 0, len(r.Record.Steps)-1)
	for _, p := range r.Record.Steps[1:] {
		s = append(s, p.Seconds)
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return time.Duration(m * float64(time.Second))
}

// LastEval returns the run's last evaluation.
func (r Run) LastEval() (trainer.EvalPoint, bool) {
	if r.Record == nil || len(r.Record.Evals) == 0 {
		return trainer.EvalPoint{}, false
	}
	return r.Record.Evals[len(r.Record.Evals)-1], true
}

// Method names what trained: the peft_types of the training adapters joined by "+", "every
// weight" for a run without adapters (pretraining), or "" for a run without a record.
func (r Run) Method() string {
	if r.Record == nil {
		return ""
	}
	var types []string
	for _, a := range r.Record.Adapters {
		if !a.Frozen && !slices.Contains(types, a.Type) {
			types = append(types, a.Type)
		}
	}
	if len(r.Record.Adapters) == 0 {
		return "every weight"
	}
	return strings.Join(types, "+")
}

// Train runs tr on src with a live progress display (see Watch) and returns the run under
// the given name. When training stops on an error, the run still holds the record so far,
// whose Error field says why.
func Train(tr *trainer.Trainer, src trainer.Source, name string) (Run, error) {
	onStep, onEval := tr.OnStep, tr.OnEval
	p := Watch(tr, name)
	rec, err := tr.Run(src)
	p.Done()
	tr.OnStep, tr.OnEval = onStep, onEval
	if err != nil {
		return Run{Name: name, Record: rec}, fmt.Errorf("training %s: %w", name, err)
	}
	return Run{Name: name, Record: rec}, nil
}
