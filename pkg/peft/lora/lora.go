// Package lora is LoRA (Hu et al., 2021) as a peftlab method: a trainable
// low-rank update added to the frozen weight of each chosen Linear site,
//
//	h = x·W + b + scale·(dropout(x)·A)·B     A: [in, r], B: [r, out]
//
// with scale = α/r (or α/√r with rsLoRA). As in Hugging Face PEFT, A starts
// Kaiming-uniform (a = √5, i.e. uniform in ±1/√in) and B at zero, so an
// adapted model starts out computing exactly what its base computes, and
// each adapted matrix adds r·(in+out) trainable parameters.
//
// # Choosing sites
//
// Targets are site patterns (see package site): the default
// "block/*/attn/{q,v}" adapts the query and value projections of every
// block, as the LoRA paper did; "block/*/**" adapts every projection in the
// blocks; the special target "all-linear" (PEFT's name) adapts every Linear
// site except the output heads. LoRA only adapts Linear sites: input
// embeddings are the business of AdaLink and prompt tuning, and asking LoRA
// for one is an error, as is a pattern that matches nothing, a negative rank
// or one above min(in, out) of some adapted site, a negative α or a dropout
// outside [0, 1). All of this is checked by peft.New before any graph is
// built. Zero fields take PEFT's defaults (r = 8, α = 8; see package peft,
// "Zero values").
//
// # Merging for inference
//
// Merge folds the update into the base weights (W' = W + scale·A·B), after
// which the adapter's hook adds nothing and the adapted model runs exactly as
// fast as the base; Unmerge restores the original weights bit for bit (if
// nothing changed them in between). Merged weights are for
// inference and export: they change the base, so a hash of the base weights
// changes too, and an adapter must be unmerged before it trains again. See
// Merge for where the merged state is kept and what that means for saving.
//
// # Files
//
// Config's JSON field names are PEFT's (r, lora_alpha, lora_dropout,
// target_modules, use_rslora) and its peft_type is "LORA"; the package
// registers itself with peft.Register, so importing it is enough for
// adapter files of this type to load. Adapter files are Hugging Face PEFT's,
// both ways: peft.SaveAdapter writes what PEFT's save_pretrained writes
// (lora_A.weight [r, in] and lora_B.weight [out, r] under
// "base_model.model.<module>.", the module being the site's path with dots,
// see ModuleName) and peft.LoadAdapter reads what PEFT writes. See
// Config.FileConfig.
package lora

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// PeftType is the method's peft_type in adapter_config.json.
const PeftType = "LORA"

// Defaults used for zero fields of a Config, the same as PEFT's.
const (
	DefaultRank = 8
	// DefaultAlpha is PEFT's lora_alpha default: whatever the rank, so a
	// rank other than 8 scales the update by 8/r unless Alpha is given.
	DefaultAlpha = 8.0
	// DefaultTarget is the LoRA paper's choice: query and value projections.
	DefaultTarget = "block/*/attn/{q,v}"
	// AllLinear is the target meaning every Linear site except the output
	// heads ("head/..."), as PEFT's target_modules="all-linear".
	AllLinear = "all-linear"
)

// Names of the variables LoRA creates in each adapted site's scope below
// the adapter scope: "/adapters/<name>/<site>/lora_A" and ".../lora_B".
const (
	VarA = "lora_A"
	VarB = "lora_B"
)

// Config is LoRA's configuration. Zero fields take the defaults named on
// each field, PEFT's (see package peft, "Zero values"): Rank 8, Alpha 8,
// Dropout 0, Targets {DefaultTarget}, α/r scaling. Negative or out-of-range
// values are errors (reported by Resolve, so by peft.New).
//
// Both Config and *Config implement peft.Method.
type Config struct {
	// Rank r of the update A·B (PEFT's r); 0 means DefaultRank, 8. Must be
	// at most min(in, out) of every adapted site.
	Rank int `json:"r"`
	// Alpha is the numerator of the scale α/r (PEFT's lora_alpha); 0 means
	// DefaultAlpha, 8 (PEFT's, whatever the rank: give Alpha = Rank for a
	// scale of 1).
	Alpha float64 `json:"lora_alpha"`
	// Dropout is the probability of zeroing an input feature of the update
	// path, in training only (PEFT's lora_dropout).
	Dropout float64 `json:"lora_dropout"`
	// Targets are site patterns such as "block/*/attn/{q,v}", or AllLinear
	// (PEFT's target_modules; in JSON a single string is accepted too).
	Targets []string `json:"target_modules"`
	// RSLoRA scales by α/√r instead of α/r (Kalajdzievski, 2023), which keeps
	// the update's size stable as the rank grows (PEFT's use_rslora).
	RSLoRA bool `json:"use_rslora"`
}

func init() {
	peft.Register(PeftType, func() peft.Method { return &Config{} })
}

// Type returns "LORA".
func (c Config) Type() string { return PeftType }

// String is a one-line description for plans and logs, with defaults filled in.
func (c Config) String() string {
	d := c.WithDefaults()
	s := fmt.Sprintf("LoRA(r=%d, α=%g, %s", d.Rank, d.Alpha, strings.Join(d.Targets, " "))
	if d.RSLoRA {
		s += ", rsLoRA"
	}
	if d.Dropout > 0 {
		s += fmt.Sprintf(", dropout=%g", d.Dropout)
	}
	return s + ")"
}

// WithDefaults returns the configuration with zero fields replaced by their
// defaults: what the adapter actually does, and what it writes to files.
func (c Config) WithDefaults() Config {
	if c.Rank == 0 {
		c.Rank = DefaultRank
	}
	if c.Alpha == 0 {
		c.Alpha = DefaultAlpha
	}
	if len(c.Targets) == 0 {
		c.Targets = []string{DefaultTarget}
	}
	return c
}

// Scale is the factor applied to (x·A)·B: α/r, or α/√r with RSLoRA.
func (c Config) Scale() float64 {
	c = c.WithDefaults()
	if c.RSLoRA {
		return c.Alpha / math.Sqrt(float64(c.Rank))
	}
	return c.Alpha / float64(c.Rank)
}

// check validates the site-independent fields of a defaulted config.
func (c Config) check() error {
	if c.Rank < 0 {
		return fmt.Errorf("rank r = %d: it must be positive (0 means the default, %d)", c.Rank, DefaultRank)
	}
	if c.Alpha < 0 || math.IsNaN(c.Alpha) || math.IsInf(c.Alpha, 0) {
		return fmt.Errorf("lora_alpha = %g: it must be a positive number (0 means the default, %g)", c.Alpha, DefaultAlpha)
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		return fmt.Errorf("lora_dropout = %g: it must be in [0, 1)", c.Dropout)
	}
	return nil
}

// Resolve implements peft.Method: it selects the Linear sites the targets
// match and lists lora_A [in, r] and lora_B [r, out] for each of them.
func (c Config) Resolve(l site.Layout) (peft.Resolution, error) {
	var res peft.Resolution
	if err := c.check(); err != nil {
		return res, err
	}
	c = c.WithDefaults()
	sites, err := c.selectSites(l)
	if err != nil {
		return res, err
	}
	for _, s := range sites {
		if s.Kind != site.Linear {
			return res, fmt.Errorf("LoRA adapts linear sites; %s is an %s site, use AdaLink or prompt tuning", s.Name, s.Kind)
		}
		if limit := min(s.In, s.Out); c.Rank > limit {
			return res, fmt.Errorf("rank r = %d is too large for site %s (%d -> %d): at most min(in, out) = %d",
				c.Rank, s.Name, s.In, s.Out, limit)
		}
		res.Sites = append(res.Sites, s)
		res.New = append(res.New,
			site.Param{Name: s.Name + "/" + VarA, Shape: []int{s.In, c.Rank}},
			site.Param{Name: s.Name + "/" + VarB, Shape: []int{c.Rank, s.Out}})
	}
	return res, nil
}

// selectSites expands AllLinear and selects the rest with Layout.Select.
func (c Config) selectSites(l site.Layout) ([]site.Site, error) {
	var patterns []site.Pattern
	all := false
	for _, t := range c.Targets {
		if t == AllLinear {
			all = true
			continue
		}
		patterns = append(patterns, site.Pattern(t))
	}
	var sel []site.Site
	if len(patterns) > 0 {
		var err error
		if sel, err = l.Select(patterns...); err != nil {
			return nil, err
		}
	}
	if !all {
		return sel, nil
	}
	chosen := map[string]bool{}
	for _, s := range sel {
		chosen[s.Name] = true
	}
	any := false
	for _, s := range l.Sites {
		if s.Kind == site.Linear && !strings.HasPrefix(s.Name, "head/") {
			chosen[s.Name], any = true, true
		}
	}
	if !any {
		return nil, fmt.Errorf("target %q: %s has no Linear site outside its heads", AllLinear, l.Model)
	}
	var out []site.Site // layout order, like Select
	for _, s := range l.Sites {
		if chosen[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// configJSON is Config without its methods, so (Un)MarshalJSON do not recurse.
type configJSON Config

// MarshalJSON writes the configuration with its defaults filled in, so an
// adapter_config.json says what was trained (r: 8, not r: 0), as PEFT's do.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON(c.WithDefaults()))
}

// UnmarshalJSON reads PEFT's field names; target_modules may be one string
// (one pattern) or a list of them. Unknown fields are refused, like every
// method's: a misspelt "lora_alhpa" must not load as the default α.
func (c *Config) UnmarshalJSON(data []byte) error {
	var raw struct {
		configJSON
		Targets json.RawMessage `json:"target_modules"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("LoRA configuration: %w (known fields: r, lora_alpha, lora_dropout, target_modules, use_rslora)", err)
	}
	*c = Config(raw.configJSON)
	c.Targets = nil
	if len(raw.Targets) == 0 || string(raw.Targets) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(raw.Targets, &one); err == nil {
		c.Targets = []string{one}
		return nil
	}
	if err := json.Unmarshal(raw.Targets, &c.Targets); err != nil {
		return fmt.Errorf("target_modules must be a string or a list of strings: %w", err)
	}
	return nil
}
