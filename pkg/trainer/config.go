package trainer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Schedule is a learning-rate schedule after warmup (Config.Schedule). In JSON it is its
// name ("cosine").
type Schedule string

// The learning-rate schedules.
const (
	Constant Schedule = "constant" // LR after warmup (the default)
	Cosine   Schedule = "cosine"   // half a cosine from LR down towards 0 over the steps after warmup
	Linear   Schedule = "linear"   // straight line from LR down towards 0 over the steps after warmup
)

// Schedules lists the accepted values of Config.Schedule.
var Schedules = []Schedule{Constant, Cosine, Linear}

// Config is one training run's settings. It is plain data, saved in the run's
// Record so a run can be repeated from its record alone.
type Config struct {
	// Steps is the number of optimizer steps.
	Steps int `json:"steps"`
	// BatchSize is the number of examples per step.
	BatchSize int `json:"batch_size"`
	// LR is the peak learning rate of AdamW.
	LR float64 `json:"lr"`
	// WeightDecay is AdamW's decoupled weight decay (the weights shrink by
	// LR·WeightDecay·w each step). It applies to every weight that trains,
	// biases and LayerNorm parameters included.
	WeightDecay float64 `json:"weight_decay,omitempty"`
	// Warmup is the number of first steps over which the learning rate rises
	// linearly to LR: step s (from 0) uses LR·(s+1)/Warmup.
	Warmup int `json:"warmup,omitempty"`
	// Schedule is the learning rate after warmup: Constant (the default when
	// empty), Cosine or Linear; see Config.LRAt.
	Schedule Schedule `json:"schedule,omitempty"`
	// EvalEvery evaluates every EvalEvery steps; 0 evaluates only before the
	// first step and after the last.
	EvalEvery int `json:"eval_every,omitempty"`
	// Seed seeds the context's random number generator (initialisation of new
	// weights, dropout) and is passed to the Source for the batch order. The
	// same Config, base weights and data give the same numbers.
	Seed int64 `json:"seed"`
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Steps <= 0 {
		errs = append(errs, fmt.Errorf("steps must be > 0, got %d", c.Steps))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, fmt.Errorf("batch_size must be > 0, got %d", c.BatchSize))
	}
	if !(c.LR > 0) || math.IsInf(c.LR, 0) {
		errs = append(errs, fmt.Errorf("lr must be a positive number, got %g", c.LR))
	}
	if !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0) {
		errs = append(errs, fmt.Errorf("weight_decay must be >= 0, got %g", c.WeightDecay))
	}
	if c.Warmup < 0 || c.Warmup > max(c.Steps, 0) {
		errs = append(errs, fmt.Errorf("warmup must be between 0 and steps (%d), got %d", c.Steps, c.Warmup))
	}
	if c.Schedule != "" && !slices.Contains(Schedules, c.Schedule) {
		names := make([]string, len(Schedules))
		for i, s := range Schedules {
			names[i] = string(s)
		}
		errs = append(errs, fmt.Errorf("schedule %q is not one of %s", c.Schedule, strings.Join(names, ", ")))
	}
	if c.EvalEvery < 0 {
		errs = append(errs, fmt.Errorf("eval_every must be >= 0, got %d", c.EvalEvery))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trainer config: %w", err)
	}
	return nil
}

// LRAt returns the learning rate of step s (counted from 0): a linear warmup
// over the first Warmup steps, then the schedule over the remaining
// Steps-Warmup steps, with progress p = (s-Warmup)/(Steps-Warmup) in [0, 1):
// Constant gives LR, Linear LR·(1-p), Cosine LR·(1+cos(πp))/2.
func (c Config) LRAt(s int) float64 {
	if s < c.Warmup {
		return c.LR * float64(s+1) / float64(c.Warmup)
	}
	p := float64(s-c.Warmup) / float64(max(1, c.Steps-c.Warmup))
	p = min(max(p, 0), 1)
	switch c.Schedule {
	case Cosine:
		return c.LR * (1 + math.Cos(math.Pi*p)) / 2
	case Linear:
		return c.LR * (1 - p)
	default:
		return c.LR
	}
}
