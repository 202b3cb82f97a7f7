package lab

import (
	"slices"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
)

// Summary is a run in a few hundred bytes: what listings, comparisons, charts and exports
// read, so that they stay fast with thousands of runs (records with their curves are read
// only for curves).
type Summary struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Base  string `json:"base"`
	Task  string `json:"task"`
	State State  `json:"state"`
	// Error says why a failed run failed.
	Error string `json:"error,omitempty"`

	// Method is the trained methods' peft_types joined by "+" ("ADALINK+LORA"), "BASE" for
	// the untuned base.
	Method  string       `json:"method"`
	Methods []MethodSpec `json:"methods,omitempty"`
	// Rank is the methods' largest rank (AdaLink, LoRA) or prompt length; 0 when none has
	// one. Placement says where they act: AdaLink's "text", "image", "both" or "shared",
	// LoRA's target patterns, FT's preset.
	Rank      int    `json:"rank,omitempty"`
	Placement string `json:"placement,omitempty"`
	// Plan is the run's PlanRow (see PlanHeader).
	Plan []string `json:"plan,omitempty"`

	LR        float64 `json:"lr,omitempty"`
	Seed      int64   `json:"seed"`
	Steps     int     `json:"steps,omitempty"`
	BatchSize int     `json:"batch_size,omitempty"`
	// Validation, Test and MaxLen are the experiment's split caps and sequence length as it
	// asked for them (0: all, the base's).
	Validation int  `json:"validation,omitempty"`
	Test       int  `json:"test,omitempty"`
	MaxLen     int  `json:"max_len,omitempty"`
	Fast       bool `json:"fast,omitempty"`
	// Backend is the compute backend that ran it (backend.Describe: matrix-product kernel
	// and GoMLX version too), so runs gathered from several machines say where each ran.
	Backend string `json:"backend,omitempty"`
	// Step is the last step a running or interrupted run reported.
	Step int `json:"step,omitempty"`

	// Metric names the task metric of Scores ("accuracy", "cider-d"); Scores holds it by
	// split ("validation", "test").
	Metric string             `json:"metric,omitempty"`
	Scores map[string]float64 `json:"scores,omitempty"`

	// Trainable is the number of scalars that trained, Total every scalar of the model
	// (adapters included), AdapterBytes the size of the stored adapter files.
	Trainable    int   `json:"num_trainable_params"`
	Total        int   `json:"num_total_params,omitempty"`
	AdapterBytes int64 `json:"file_size,omitempty"`
	// StepSeconds is the median step time (see Run.StepTime), TrainSeconds the whole run.
	StepSeconds  float64   `json:"step_seconds,omitempty"`
	TrainSeconds float64   `json:"train_time,omitempty"`
	EvalLoss     float64   `json:"eval_loss,omitempty"`
	Finished     time.Time `json:"finished,omitzero"`

	// Point holds a grid's axis labels for this run ("rank": "8"); it is set by the grid
	// that asked for the run, in memory only (the same run can be a point of several grids).
	Point map[string]string `json:"-"`
}

// Split names scored by runs.
const (
	SplitValidation = "validation"
	SplitTest       = "test"
)

// summary is what a run's configuration alone says about it.
func (c runConfig) summary() Summary {
	id := c.Identity
	s := Summary{ID: c.ID, Name: c.Name, Base: id.Base, Task: id.Task, Methods: id.Methods,
		LR: id.Training.LR, Seed: id.Training.Seed, Steps: id.Training.Steps, BatchSize: id.Training.BatchSize, Fast: id.Fast,
		Validation: id.Validation, Test: id.Test, MaxLen: id.MaxLen, Backend: id.Backend}
	s.Method, s.Rank, s.Placement = describeMethods(id.Methods)
	return s
}

// describeMethods sums up methods for summaries: their types, largest rank and placement,
// read from their stored form, where zero fields show their defaults (adalink.Config{} is
// rank 8).
func describeMethods(specs []MethodSpec) (method string, rank int, placement string) {
	if len(specs) == 0 {
		return "BASE", 0, ""
	}
	var types, places []string
	for _, spec := range specs {
		if !slices.Contains(types, spec.Type) {
			types = append(types, spec.Type)
		}
		m, err := spec.Method()
		if err != nil {
			continue
		}
		r, p := rankAndPlacement(m)
		rank = max(rank, r)
		if p != "" && !slices.Contains(places, p) {
			places = append(places, p)
		}
	}
	return strings.Join(types, "+"), rank, strings.Join(places, "; ")
}

// rankAndPlacement reads the rank and the placement of the shipped methods' configurations.
func rankAndPlacement(m peft.Method) (int, string) {
	switch c := derefMethod(m).(type) {
	case adalink.Config:
		return c.Rank, string(placementOf(c))
	case lora.Config:
		return c.Rank, strings.Join(c.Targets, ",")
	case prompt.Config:
		return c.Tokens, "prompt"
	case full.Config:
		p := strings.Join(c.Targets, ",")
		if c.Preset != "" {
			p = strings.TrimSpace(string(c.Preset) + " " + p)
		}
		if p == "" {
			p = "all"
		}
		return 0, p
	}
	return 0, ""
}
