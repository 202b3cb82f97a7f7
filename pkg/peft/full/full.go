// Package full implements full fine-tuning and its partial variants as a
// peft.Method: instead of adding weights, it unfreezes base weights.
//
// Presets cover the usual ablations, and Targets selects any other subset by
// pattern; both may be given, and their union trains:
//
//	All        "all"        every base weight (the default when nothing is given)
//	Head       "head"       the output heads, head/**
//	LayerNorm  "layernorm"  every LayerNorm gain and offset (LN tuning)
//	Last(K)    "last:K"     every weight of the last K transformer blocks
//
// The method attaches to no site and its hooks do nothing: peft.Model marks
// the resolved base weights trainable on every build, and refuses a second
// adapter that claims the same weights. Its trained state is those base
// weights themselves: there is nothing under "/adapters/<name>".
package full

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// PeftType is full fine-tuning's peft_type in adapter_config.json.
const PeftType = "FULL"

func init() {
	peft.Register(PeftType, func() peft.Method { return &Config{} })
}

// Preset names a fixed subset of the base weights (Config.Preset). In JSON it is its name
// ("head", "last:2").
type Preset string

// The presets; Last(k) makes "last:K".
const (
	All       Preset = "all"
	Head      Preset = "head"
	LayerNorm Preset = "layernorm"
)

// Last is the preset of every weight of the last k transformer blocks, "last:k".
func Last(k int) Preset { return Preset("last:" + strconv.Itoa(k)) }

// Presets are the accepted values of Config.Preset, for messages; "last:K" takes a block
// count (Last).
var Presets = []Preset{All, Head, LayerNorm, "last:K"}

// Config says which base weights train. It is plain data and is what
// adapter_config.json stores next to "peft_type": "FULL". Zero fields take
// the defaults named on each field (see package peft, "Zero values"): the
// zero Config trains every base weight. An unknown preset or a pattern that
// matches nothing is an error (reported by Resolve, so by peft.New).
type Config struct {
	// Targets are weight patterns (site.Pattern), e.g. "block/*/attn/**" or
	// "embed/text/embeddings". A pattern that names sites rather than weights,
	// such as "block/*/attn/{q,v}", selects those sites' weights and biases.
	Targets []string `json:"targets,omitempty"`
	// Preset is one of Presets. Empty means All when Targets is empty too,
	// and no preset (only the targets) otherwise.
	Preset Preset `json:"preset,omitempty"`
}

// Type implements peft.Method.
func (c Config) Type() string { return PeftType }

// WithDefaults returns the configuration with zero fields replaced by their
// defaults: what trains, and what adapter files and run records show.
func (c Config) WithDefaults() Config {
	if c.Preset == "" && len(c.Targets) == 0 {
		c.Preset = All
	}
	return c
}

// configJSON is Config without its methods, so MarshalJSON does not recurse.
type configJSON Config

// MarshalJSON writes the configuration with its defaults filled in, so a file
// says what was trained ("preset": "all", not nothing).
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON(c.WithDefaults()))
}

// String is a one-line description for plans and logs, with defaults filled in.
func (c Config) String() string {
	c = c.WithDefaults()
	parts := slices.Clone(c.Targets)
	if c.Preset != "" {
		parts = append([]string{string(c.Preset)}, parts...)
	}
	return "Full(" + strings.Join(parts, ", ") + ")"
}

// Resolve implements peft.Method: it returns the base weights that train, in
// layout order, and no sites.
func (c Config) Resolve(l site.Layout) (peft.Resolution, error) {
	var res peft.Resolution
	if len(l.Params) == 0 {
		return res, fmt.Errorf("base model %s declares no weights", l.Model)
	}
	patterns, err := presetPatterns(c.WithDefaults().Preset, l)
	if err != nil {
		return res, err
	}
	for _, t := range c.Targets {
		p, err := targetPattern(site.Pattern(t), l)
		if err != nil {
			return res, err
		}
		patterns = append(patterns, p)
	}
	res.Base, err = l.SelectParams(patterns...)
	return res, err
}

// presetPatterns returns the weight patterns of a preset ("" gives none).
func presetPatterns(preset Preset, l site.Layout) ([]site.Pattern, error) {
	switch preset {
	case "":
		return nil, nil
	case All:
		return []site.Pattern{"**"}, nil
	case Head:
		return []site.Pattern{"head/**"}, nil
	case LayerNorm:
		return []site.Pattern{"**/{gain,offset}"}, nil
	}
	if ks, ok := strings.CutPrefix(string(preset), "last:"); ok {
		k, err := strconv.Atoi(ks)
		if err != nil || k <= 0 {
			return nil, fmt.Errorf("preset %q: K must be a positive number of blocks, e.g. last:2", preset)
		}
		if k > l.Blocks {
			return nil, fmt.Errorf("preset %q: %s has only %d blocks", preset, l.Model, l.Blocks)
		}
		var ps []site.Pattern
		for i := l.Blocks - k; i < l.Blocks; i++ {
			ps = append(ps, site.Pattern(fmt.Sprintf("block/%d/**", i)))
		}
		return ps, nil
	}
	names := make([]string, len(Presets))
	for i, p := range Presets {
		names[i] = string(p)
	}
	return nil, fmt.Errorf("unknown preset %q: use one of %s, or give targets", preset, strings.Join(names, ", "))
}

// targetPattern returns p when it selects weights, or p/* when it selects
// only sites, so that site names work as targets too.
func targetPattern(p site.Pattern, l site.Layout) (site.Pattern, error) {
	if err := p.Validate(); err != nil {
		return "", err
	}
	if slices.ContainsFunc(l.Params, func(prm site.Param) bool { return p.Match(prm.Name) }) {
		return p, nil
	}
	if slices.ContainsFunc(l.Sites, func(s site.Site) bool { return p.Match(s.Name) }) {
		return p + "/*", nil
	}
	return p, nil // SelectParams reports the miss.
}

// Input implements site.Hook; full fine-tuning changes no computation.
func (c Config) Input(_ *mlmodel.Scope, _ site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	return x, mask
}

// Linear implements site.Hook; full fine-tuning changes no computation.
func (c Config) Linear(_ *mlmodel.Scope, _ site.Site, _, y *graph.Node) *graph.Node { return y }
