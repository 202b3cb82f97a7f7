// Package adalink implements AdaLink, the input-centric PEFT method of
// "Non-Intrusive Adaptation: Input-Centric Parameter-efficient Fine-Tuning for
// Versatile Multimodal Modeling" (arXiv 2310.12100).
//
// AdaLink adapts only the input embeddings of a frozen model, between each
// modality's embedding layer and the first transformer block:
//
//	AdaLink(x) = x + φ(x·A)·B,   A: d×r,  B: r×d
//
// with B = 0 at initialisation, so an adapted model starts out computing
// exactly what its base computes. Nothing inside the transformer blocks
// changes, the sequence keeps its length, and the cost is O(n·d·r) once at the
// input. Each modality gets its own (A, B) unless Shared asks for one adapter
// for all (the paper's ablation). Parameters: 2·d·r per modality.
//
// Usage: attach a Config to a base layout with peft.New and pass the resulting
// peft.Model as the base model's hook; see the package example.
//
// Weights, relative to the adapter's scope "/adapters/<name>":
//
//	input/<modality>/A  [d, r]
//	input/<modality>/B  [r, d]
//	shared/A, shared/B  (Shared: one pair for every modality)
//
// The [d, r] and [r, d] layout is the one a mixed-task server gathers per
// example (`bnd,bdr->bnr`, `bnr,brd->bnd`).
package adalink

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// PeftType is AdaLink's peft_type in adapter_config.json.
const PeftType = "ADALINK"

func init() {
	peft.Register(PeftType, func() peft.Method { return &Config{} })
}

// Activations lists the accepted values of Config.Activation; "" means identity.
var Activations = []string{"identity", "relu", "gelu", "tanh"}

// Defaults used for zero fields of a Config. PEFT has no AdaLink, so there is
// no PEFT default to follow: the rank is LoRA's, for comparable budgets, and
// φ the paper's (it leaves φ implicit).
const (
	DefaultRank       = 8
	DefaultActivation = "identity"
)

// Config is an AdaLink adapter's configuration. It is plain data and is what
// adapter_config.json stores next to "peft_type": "ADALINK". Zero fields take
// the defaults named on each field (see package peft, "Zero values");
// negative or out-of-range values are errors (reported by Resolve, so by
// peft.New).
type Config struct {
	// Rank is r, the bottleneck width: 1 <= Rank <= model width; 0 means
	// DefaultRank, 8.
	Rank int `json:"rank"`
	// Modalities are the input modalities to adapt ("text", "image"). Empty
	// means every modality the base model has.
	Modalities []string `json:"modalities,omitempty"`
	// Shared uses one (A, B) pair for all the adapted modalities instead of one
	// per modality: the paper's ablation (it reports separate adapters help).
	Shared bool `json:"shared,omitempty"`
	// Activation is φ: "identity" (the default, for ""; the paper leaves it
	// implicit), "relu", "gelu" (exact, erf-based) or "tanh".
	Activation string `json:"activation,omitempty"`
	// InitStd, when > 0, draws A from a normal distribution with this standard
	// deviation. 0 (the default) uses Kaiming-uniform with a=√5, the same as
	// LoRA's A and PyTorch's nn.Linear: uniform in ±1/√d.
	InitStd float64 `json:"init_std,omitempty"`
}

// Type implements peft.Method.
func (c Config) Type() string { return PeftType }

// WithDefaults returns the configuration with zero fields replaced by their
// defaults: what the adapter does, and what it writes to files. Modalities
// stay empty (every modality of the base: known only with the base).
func (c Config) WithDefaults() Config {
	if c.Rank == 0 {
		c.Rank = DefaultRank
	}
	if c.Activation == "" {
		c.Activation = DefaultActivation
	}
	return c
}

// configJSON is Config without its methods, so MarshalJSON does not recurse.
type configJSON Config

// MarshalJSON writes the configuration with its defaults filled in, so an
// adapter_config.json says what was trained ("rank": 8, not "rank": 0).
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON(c.WithDefaults()))
}

// String is a one-line description for plans and logs, with defaults filled in.
func (c Config) String() string {
	c = c.WithDefaults()
	mods := "all modalities"
	if len(c.Modalities) > 0 {
		mods = strings.Join(c.Modalities, "+")
	}
	s := fmt.Sprintf("AdaLink(r=%d, %s", c.Rank, mods)
	if c.Shared {
		s += ", shared"
	}
	if c.Activation != DefaultActivation {
		s += ", φ=" + c.Activation
	}
	return s + ")"
}

// Resolve implements peft.Method: it checks the rank, the activation and the
// modalities against the base, and lists the Input sites AdaLink adapts and
// the weights it creates. AdaLink never attaches to a Linear site.
func (c Config) Resolve(l site.Layout) (peft.Resolution, error) {
	var res peft.Resolution
	c = c.WithDefaults()
	if c.Rank < 0 || c.Rank > l.Width {
		return res, fmt.Errorf("rank %d is out of range: it must be between 1 and the model width %d (0 means the default, %d)", c.Rank, l.Width, DefaultRank)
	}
	if !slices.Contains(Activations, c.Activation) {
		return res, fmt.Errorf("unknown activation %q: use one of %s (empty = identity)", c.Activation, strings.Join(Activations, ", "))
	}
	if c.InitStd < 0 {
		return res, fmt.Errorf("init_std %g is negative: use a positive standard deviation, or 0 for Kaiming-uniform", c.InitStd)
	}
	have := l.Modalities()
	if len(have) == 0 {
		return res, fmt.Errorf("base model %s has no input embedding site for AdaLink to adapt", l.Model)
	}
	mods := c.Modalities
	if len(mods) == 0 {
		mods = have
	}
	for i, m := range mods {
		if !slices.Contains(have, m) {
			return res, fmt.Errorf("base model %s has no %q modality; it has: %s", l.Model, m, strings.Join(have, ", "))
		}
		if slices.Contains(mods[:i], m) {
			return res, fmt.Errorf("modality %q is listed twice", m)
		}
	}
	for _, s := range l.Sites {
		if s.Kind == site.Input && slices.Contains(mods, s.Modality) {
			res.Sites = append(res.Sites, s)
		}
	}
	if c.Shared {
		d := res.Sites[0].In
		for _, s := range res.Sites[1:] {
			if s.In != d {
				return res, fmt.Errorf("shared adapter needs one width, but %s is %d wide and %s is %d",
					res.Sites[0].Name, d, s.Name, s.In)
			}
		}
		res.New = weights(sharedScope, d, c.Rank)
		return res, nil
	}
	for _, s := range res.Sites {
		res.New = append(res.New, weights(s.Name, s.In, c.Rank)...)
	}
	return res, nil
}

// sharedScope holds the single (A, B) pair of a Shared adapter.
const sharedScope = "shared"

// Names of the two weights in each adapter scope.
const (
	nameA = "A"
	nameB = "B"
)

func weights(scope string, d, r int) []site.Param {
	return []site.Param{
		{Name: scope + "/" + nameA, Shape: []int{d, r}},
		{Name: scope + "/" + nameB, Shape: []int{r, d}},
	}
}
