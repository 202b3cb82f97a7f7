// Package prompt implements prompt tuning (Lester et al., "The Power of Scale
// for Parameter-Efficient Prompt Tuning", 2021): p trainable "soft tokens" of
// the model width d are prepended to the text input embeddings of a frozen
// model. It adds p·d parameters and lengthens every text sequence by p.
//
// The soft tokens are initialised, by default, to the embeddings of p
// vocabulary tokens sampled with a seed from the base's own embedding table
// (/embed/text/embeddings); Lester et al. found this much better than random
// vectors.
//
// Weights, relative to the adapter's scope "/adapters/<name>":
//
//	input/text/prompt  [p, d]
//
// The base model must leave room for the inserted tokens: its text length
// limit (MaxLen) counts them, so the longest text it accepts shrinks by p.
//
// Adapters at the same site run in the order they were attached: attach
// AdaLink on text before prompt tuning to leave the soft tokens out of
// AdaLink's map, after it to pass them through.
package prompt

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// PeftType is prompt tuning's peft_type in adapter_config.json, as in HF PEFT.
const PeftType = "PROMPT_TUNING"

func init() {
	peft.Register(PeftType, func() peft.Method { return &Config{} })
}

// Values of Config.Init.
const (
	// InitVocab copies the embeddings of sampled vocabulary tokens (the default).
	InitVocab = "vocab"
	// InitRandom draws every entry uniformly from [-0.5, 0.5), Lester et al.'s random init.
	InitRandom = "random"
)

// DefaultTokens is the number of soft tokens of a zero Config.Tokens. PEFT
// has no default (num_virtual_tokens must be given); 8 is what its
// prompt-tuning guide uses.
const DefaultTokens = 8

// Config is a prompt-tuning adapter's configuration. It is plain data and is
// what adapter_config.json stores next to "peft_type": "PROMPT_TUNING". Zero
// fields take the defaults named on each field (see package peft, "Zero
// values"); negative or unknown values are errors (reported by Resolve, so
// by peft.New).
type Config struct {
	// Tokens is p, the number of soft tokens (HF PEFT's num_virtual_tokens);
	// 0 means DefaultTokens, 8.
	Tokens int `json:"num_virtual_tokens"`
	// Modality is the input the tokens are prepended to; only "text" (the
	// default when empty) is supported, since the base model reserves extra
	// positions for inserted tokens in its text only.
	Modality string `json:"modality,omitempty"`
	// Init is InitVocab (the default when empty) or InitRandom.
	Init string `json:"init,omitempty"`
	// Seed chooses the sampled tokens (InitVocab) or the random values (InitRandom),
	// so the same config gives the same start; 0 is seed 0.
	Seed int64 `json:"seed,omitempty"`
}

// Type implements peft.Method.
func (c Config) Type() string { return PeftType }

// WithDefaults returns the configuration with zero fields replaced by their
// defaults: what the adapter does, and what it writes to files.
func (c Config) WithDefaults() Config {
	if c.Tokens == 0 {
		c.Tokens = DefaultTokens
	}
	if c.Modality == "" {
		c.Modality = "text"
	}
	if c.Init == "" {
		c.Init = InitVocab
	}
	return c
}

// configJSON is Config without its methods, so MarshalJSON does not recurse.
type configJSON Config

// MarshalJSON writes the configuration with its defaults filled in, so an
// adapter_config.json says what was trained.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(configJSON(c.WithDefaults()))
}

// String is a one-line description for plans and logs, with defaults filled in.
func (c Config) String() string {
	c = c.WithDefaults()
	return fmt.Sprintf("PromptTuning(p=%d, init=%s)", c.Tokens, c.Init)
}

// Scope-relative names of the prompt weight.
const (
	siteName   = "input/text"
	promptName = "prompt"
	// embeddingScope and embeddingName locate the base's text embedding table.
	embeddingScope = "/embed/text"
	embeddingName  = "embeddings"
)

// Resolve implements peft.Method: it checks the token count, the modality and
// the init against the base, and lists the text input site and the [p, d]
// prompt weight.
//
// A too-long prompt is caught here as far as the layout allows (p must leave
// room for at least one real token in the position table); whether p plus a
// batch's text length fits MaxLen is only known when the graph is built, and
// the model reports it then.
func (c Config) Resolve(l site.Layout) (peft.Resolution, error) {
	var res peft.Resolution
	c = c.WithDefaults()
	if c.Tokens < 0 {
		return res, fmt.Errorf("num_virtual_tokens %d: prompt tuning needs at least one soft token (0 means the default, %d)", c.Tokens, DefaultTokens)
	}
	if c.Modality != "text" {
		return res, fmt.Errorf("modality %q: prompt tuning prepends soft tokens to text only", c.Modality)
	}
	if c.Init != InitVocab && c.Init != InitRandom {
		return res, fmt.Errorf("init %q: use %q (sampled vocabulary embeddings) or %q", c.Init, InitVocab, InitRandom)
	}
	s, ok := l.Site(siteName)
	if !ok || s.Kind != site.Input {
		return res, fmt.Errorf("base model %s has no text input to prepend soft tokens to; it has: %s",
			l.Model, strings.Join(l.Modalities(), ", "))
	}
	if c.Init == InitVocab {
		if !hasParam(l, embeddingScope+"/"+embeddingName) {
			return res, fmt.Errorf("init %q needs the base's vocabulary table %s/%s, which %s lacks; use init %q",
				InitVocab, embeddingScope, embeddingName, l.Model, InitRandom)
		}
		if l.Vocab < 2 {
			return res, fmt.Errorf("init %q needs a vocabulary with tokens besides padding, %s has %d", InitVocab, l.Model, l.Vocab)
		}
	}
	if c.Tokens >= l.MaxLen {
		return res, fmt.Errorf("num_virtual_tokens %d leaves no room for text: %s has only %d positions (MaxLen counts the soft tokens)",
			c.Tokens, l.Model, l.MaxLen)
	}
	res.Sites = []site.Site{s}
	res.New = []site.Param{{Name: siteName + "/" + promptName, Shape: []int{c.Tokens, s.In}}}
	return res, nil
}

func hasParam(l site.Layout, name string) bool {
	for _, p := range l.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}
