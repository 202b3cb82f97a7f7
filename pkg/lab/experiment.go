package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Experiment is one training run as a researcher states it: a base, a task with its split
// sizes, a training budget, a seed, and the methods to train together. It is plain data.
//
// Zero fields take the default named in their comment: the recipe of every experiment is the
// same (AdamW, a linear warmup over the first tenth of the steps, then a cosine decay,
// evaluation five times), so that methods compare on equal terms and only what the
// experiment names differs. Run it with Experiment.Run (the default store) or Store.Run.
type Experiment struct {
	// Name labels the run in tables and charts. It is not part of the run's identity: two
	// experiments that differ only in their names are the same run.
	Name string
	// Base names the base model (bases.Names, or whatever the store's LoadBase knows).
	Base string
	// Task names the task (tasks.Names, or whatever the store's LoadTask knows).
	Task string
	// Validation and Test cap the examples of those splits: Validation is evaluated
	// (teacher-forced loss) during training and scored by generation to choose learning
	// rates; Test is scored by generation, once per run. 0 takes the whole split.
	Validation, Test int
	// MaxLen is the length of a training sequence in tokens; 0 takes the base's text
	// positions, less room for prompt tuning's virtual tokens when a method adds them.
	MaxLen int
	// Steps and BatchSize are the training budget; 0 takes 200 steps of 16 examples.
	Steps, BatchSize int
	// LR is AdamW's peak learning rate; 0 is an error (the right value differs by orders
	// of magnitude between methods: choose it, or let a Sweep choose it on validation).
	LR float64
	// Seed seeds the new weights' initialisation and the batch order. 0 is a seed like
	// any other.
	Seed int64
	// Methods are the adapters trained together (AdaLink + LoRA is one experiment). None
	// is the untuned base: scored, never trained.
	Methods []peft.Method

	// lrs are a Variant's learning rates to sweep in a grid.
	lrs []float64
}

// Defaults of the recipe (see Experiment).
const (
	DefaultSteps     = 200
	DefaultBatchSize = 16
)

// Fast mode (mode.Fast, PEFTLAB_FAST=1): every experiment becomes a smoke test of the whole path, a few
// steps on a few examples, whatever it asks for. Its numbers mean nothing; its runs are stored
// apart from full-mode runs (the mode is part of a run's identity).
const (
	FastSteps     = 5
	FastBatchSize = 4
	FastExamples  = 16
)

// resolved returns the experiment with its zero fields replaced by their defaults and fast
// mode applied, or an error naming every problem.
func (x Experiment) resolved(fast bool) (Experiment, error) {
	if x.Steps == 0 {
		x.Steps = DefaultSteps
	}
	if x.BatchSize == 0 {
		x.BatchSize = DefaultBatchSize
	}
	if fast {
		x.Steps = min(x.Steps, FastSteps)
		x.BatchSize = min(x.BatchSize, FastBatchSize)
		x.Validation = capped(x.Validation, FastExamples)
		x.Test = capped(x.Test, FastExamples)
	}
	var errs []error
	if x.Base == "" {
		errs = append(errs, errors.New("no base: set Base (e.g. bases.Text)"))
	}
	if x.Task == "" {
		errs = append(errs, errors.New("no task: set Task (see tasks.Names)"))
	}
	if x.Steps < 0 || x.BatchSize < 0 || x.Validation < 0 || x.Test < 0 || x.MaxLen < 0 {
		errs = append(errs, fmt.Errorf("steps (%d), batch size (%d), validation (%d), test (%d) and max length (%d) must not be negative",
			x.Steps, x.BatchSize, x.Validation, x.Test, x.MaxLen))
	}
	if len(x.Methods) > 0 && !(x.LR > 0 && !math.IsInf(x.LR, 0)) {
		errs = append(errs, fmt.Errorf("learning rate must be a positive number, got %g (methods differ by orders of magnitude: set LR, or use a Sweep)", x.LR))
	}
	for i, m := range x.Methods {
		if m == nil {
			errs = append(errs, fmt.Errorf("method %d is nil", i+1))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return x, fmt.Errorf("experiment %s: %w", x.label(), err)
	}
	return x, nil
}

// capped is n limited to c, where n = 0 means "all" (so the cap itself).
func capped(n, c int) int {
	if n == 0 {
		return c
	}
	return min(n, c)
}

// Training is the trainer configuration of the experiment's recipe: warmup over the first
// tenth of the steps, cosine decay, and evaluation before the first step, after the last and
// at every fifth of the way (only before and after in runs too short to draw a curve, under
// 25 steps).
func (x Experiment) Training() trainer.Config {
	every := x.Steps / 5
	if x.Steps < 25 {
		every = 0
	}
	return trainer.Config{Steps: x.Steps, BatchSize: x.BatchSize, LR: x.LR, Warmup: x.Steps / 10,
		Schedule: trainer.Cosine, EvalEvery: every, Seed: x.Seed}
}

// label is Name, or a description built from the methods.
func (x Experiment) label() string {
	if x.Name != "" {
		return x.Name
	}
	if len(x.Methods) == 0 {
		return "base, untuned"
	}
	var parts []string
	for _, m := range x.Methods {
		if m == nil {
			parts = append(parts, "nil")
			continue
		}
		parts = append(parts, describeMethod(m))
	}
	return strings.Join(parts, " + ")
}

// describeMethod is a method's one-line description (its String when it has one).
func describeMethod(m peft.Method) string {
	if s, ok := m.(fmt.Stringer); ok {
		return s.String()
	}
	return m.Type()
}

// adapterNames names the experiment's adapters after their methods, lower case ("adalink",
// "lora"), numbered when a method repeats ("lora", "lora-2").
func adapterNames(methods []peft.Method) []string {
	names := make([]string, len(methods))
	seen := map[string]int{}
	for i, m := range methods {
		n := strings.ToLower(m.Type())
		seen[n]++
		if seen[n] > 1 {
			n = fmt.Sprintf("%s-%d", n, seen[n])
		}
		names[i] = n
	}
	return names
}

// MethodSpec is a method's configuration as stored: its peft_type and its JSON, as in
// adapter_config.json.
type MethodSpec struct {
	Type   string          `json:"peft_type"`
	Config json.RawMessage `json:"config"`
}

func specsOf(methods []peft.Method) ([]MethodSpec, error) {
	specs := make([]MethodSpec, len(methods))
	for i, m := range methods {
		data, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("method %d (%s): %w", i+1, m.Type(), err)
		}
		specs[i] = MethodSpec{Type: m.Type(), Config: data}
	}
	return specs, nil
}

// Method decodes the stored configuration with the method registry.
func (s MethodSpec) Method() (peft.Method, error) {
	m, err := peft.NewConfig(s.Type)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(s.Config, m); err != nil {
		return nil, fmt.Errorf("%s config: %w", s.Type, err)
	}
	return derefMethod(m), nil
}

// derefMethod turns the pointer the registry decodes into back into the value type the
// method packages declare (adalink.Config, not *adalink.Config), so that stored and declared
// methods describe and compare alike.
func derefMethod(m peft.Method) peft.Method {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		if e, ok := v.Elem().Interface().(peft.Method); ok {
			return e
		}
	}
	return m
}
