package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/trainer"
	"github.com/peftlab/peftlab/pkg/version"
)

// Identity is everything that determines a run's numbers; the hash of its JSON is the run's
// id in the store. A name is not part of it, and neither is what is scored afterwards (a
// stored run gains a test score without becoming another run).
type Identity struct {
	// Base is the base's name and BaseID the identity of its weights (peft.BaseHash), so a
	// re-pretrained base under the same name is another base.
	Base   string `json:"base"`
	BaseID string `json:"base_id"`
	// Task and the split sizes as the experiment asks for them (0: the whole split).
	Task       string `json:"task"`
	Validation int    `json:"validation"`
	Test       int    `json:"test"`
	MaxLen     int    `json:"max_len"`
	// Methods are the adapters' configurations, as adapter_config.json stores them.
	Methods  []MethodSpec   `json:"methods"`
	Training trainer.Config `json:"training"`
	Fast     bool           `json:"fast"`
	// Backend describes the compute backend (backend.Describe): another backend, or another
	// matrix-product kernel, sums in another order.
	Backend string `json:"backend"`
	// Peftlab is the peftlab version and revision that ran.
	Peftlab string `json:"peftlab"`
}

// ID is the run's id: the first 16 hex digits (64 bits) of the SHA-256 of the identity's
// JSON, which Go encodes with a fixed field order.
func (id Identity) ID() string {
	data, err := json.Marshal(id)
	if err != nil { // cannot happen: every field is plain data
		panic(fmt.Sprintf("lab: identity does not encode: %v", err))
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}

// identity is the resolved experiment's identity in this store.
func (s *Store) identity(x Experiment) (Identity, error) {
	specs, err := specsOf(x.Methods)
	if err != nil {
		return Identity{}, err
	}
	baseID, err := s.baseID(x.Base)
	if err != nil {
		return Identity{}, err
	}
	v := version.Current()
	peftlab := v.Peftlab
	if v.Revision != "" {
		peftlab += " " + v.Revision
	}
	tc := x.Training()
	if len(x.Methods) == 0 { // the untuned base trains nothing: its budget does not matter
		tc = trainer.Config{}
	}
	return Identity{Base: x.Base, BaseID: baseID, Task: x.Task, Validation: x.Validation, Test: x.Test,
		MaxLen: x.MaxLen, Methods: specs, Training: tc, Fast: s.Fast, Backend: backend.Describe(), Peftlab: peftlab}, nil
}

// baseID is the identity of a base's weights. For shipped bases it comes from the embedded
// report, without loading any weight, so that finding a stored run stays fast.
func (s *Store) baseID(name string) (string, error) {
	if s.LoadBase == nil {
		r, err := bases.ShippedReport(name)
		if err != nil {
			return "", err
		}
		return r.BaseHash, nil
	}
	b, err := s.LoadBase(name)
	if err != nil {
		return "", err
	}
	return b.ID(), nil
}

// runConfig is what config.json holds.
type runConfig struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Identity Identity `json:"identity"`
}
