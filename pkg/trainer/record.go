package trainer

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/version"
)

// Record is everything needed to read, plot or repeat a training run. It is
// plain data: Save writes it as JSON, LoadRecord reads it back.
type Record struct {
	Config Config       `json:"config"`
	Model  model.Config `json:"model"`
	// Adapters are the attached adapters, with their method configurations
	// as they appear in adapter_config.json. Empty: every weight trained.
	Adapters []AdapterRecord `json:"adapters,omitempty"`
	// PlannedTrainable and PlannedTotal are the plan's counts of scalars
	// (peft.Model.Plan); TrainableParams counts the scalars of the variables
	// that were actually trainable when the training graph was built.
	PlannedTrainable int `json:"planned_trainable,omitempty"`
	PlannedTotal     int `json:"planned_total,omitempty"`
	TrainableParams  int `json:"trainable_params"`

	Versions version.Stamp `json:"versions"`
	// Backend describes the GoMLX backend (backend.Describe).
	Backend string `json:"backend"`

	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Steps has one point per optimizer step: the loss curve.
	Steps []StepPoint `json:"steps"`
	// Evals has one point per evaluation.
	Evals []EvalPoint `json:"evals,omitempty"`
	// Error says why the run stopped early; empty when it completed.
	Error string `json:"error,omitempty"`
}

// AdapterRecord is one attached adapter.
type AdapterRecord struct {
	Name   string          `json:"name"`
	Type   string          `json:"peft_type"`
	Method json.RawMessage `json:"config"`
	Frozen bool            `json:"frozen,omitempty"`
}

// StepPoint is one training step.
type StepPoint struct {
	Step    int     `json:"step"`
	Loss    float64 `json:"loss"`
	LR      float64 `json:"lr"`
	Seconds float64 `json:"seconds"`
}

// EvalPoint is one evaluation, after Step training steps.
type EvalPoint struct {
	Step int `json:"step"`
	Metrics
}

func newRecord(cfg Config, base model.Config, m *peft.Model) *Record {
	r := &Record{Config: cfg, Model: base, Versions: version.Current(), Backend: backend.Describe(),
		Started: time.Now().UTC(), Steps: []StepPoint{}}
	if m != nil {
		for _, a := range m.Adapters() {
			r.Adapters = append(r.Adapters, AdapterRecord{Name: a.Name, Type: a.Method.Type(), Method: methodJSON(a.Method), Frozen: a.Frozen})
		}
		p := m.Plan()
		r.PlannedTrainable, r.PlannedTotal = p.Trainable, p.Total
	}
	return r
}

// Losses returns the training loss of every step, in order.
func (r *Record) Losses() []float64 {
	out := make([]float64, len(r.Steps))
	for i, p := range r.Steps {
		out[i] = p.Loss
	}
	return out
}

// Save writes the record as indented JSON, atomically: readers see the old
// file or the new one, never a partial one.
func (r *Record) Save(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("save run record: %w", err)
	}
	return atomicfile.WriteBytes(path, append(data, '\n'))
}

// LoadRecord reads a record written by Save.
func LoadRecord(path string) (*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load run record: %w", err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("load run record %s: %w", path, err)
	}
	return &r, nil
}
