// Package peft attaches parameter-efficient fine-tuning methods to a frozen
// base model and decides, on every graph build, which weights train.
//
// A base model describes itself as a site.Layout and calls a site.Hook at
// each of its sites. A Model here is that hook: it holds named Adapters, each
// one Method (AdaLink, LoRA, prompt tuning, full fine-tuning, all in sub
// packages), and forwards every site call to the adapters that resolved to
// that site. Methods never touch the base model any other way.
//
// Variables: an adapter named "task" keeps all of its weights under the
// GoMLX scope "/adapters/task", so an adapter is saved, loaded, swapped and
// counted apart from the base, and the base's weights are exactly the
// variables outside "/adapters" (and outside GoMLX's training state, see
// IsBaseVariable).
//
// Files: SaveAdapter writes one adapter alone, in Hugging Face PEFT's layout
// (adapter_config.json + adapter_model.safetensors), with the identity of
// the base it was trained on (BaseHash, a SHA-256 of the base weights);
// LoadAdapter puts it back onto a base, refusing a different base, a damaged
// or truncated file, weights that do not fit the method, and unknown methods.
// LoRA adapters are written exactly as PEFT writes them (keys, orientation,
// config fields), and LoadAdapter reads those PEFT writes (see FileFormat).
//
// # Zero values
//
// Every method's Config follows one rule: a zero field takes the default
// named in its doc comment (Hugging Face PEFT's default where PEFT has one:
// LoRA's r = 8 and lora_alpha = 8), so the zero Config is a working adapter;
// a negative or otherwise invalid value is an error, which Resolve (so New)
// reports before any graph is built. Each Config's WithDefaults returns it
// with the zeros resolved, and what it shows is the resolved configuration:
// its String (plans, logs) and its JSON (adapter_config.json, run.json), so
// a file says what was trained ("r": 8, not "r": 0). A default that depends
// on the base (AdaLink's modalities: all the base has) stays empty in JSON.
package peft

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// Method is one PEFT method's configuration, a plain JSON-serializable struct
// (adalink.Config, lora.Config, ...), together with what it does at sites.
type Method interface {
	// Type is the method's peft_type in adapter_config.json, e.g. "ADALINK" or "LORA".
	Type() string

	// Resolve checks the configuration against a base model's layout and says
	// which sites the method adapts and which weights it trains. It builds no
	// graph, so bad configurations fail before anything is allocated.
	Resolve(l site.Layout) (Resolution, error)

	// The Hook methods are only called at sites listed in Resolution.Sites,
	// with sc at the adapter's scope ("/adapters/<name>"): a method creates
	// its variables below it, typically in s.InScope(sc).
	site.Hook
}

// Resolution is what a method does to one base model.
type Resolution struct {
	// Sites are the sites where the method's hook runs.
	Sites []site.Site
	// New are the weights the method creates, named relative to the adapter
	// scope, e.g. "block/0/attn/q/lora_A" (stored as "/adapters/<name>/block/0/attn/q/lora_A").
	New []site.Param
	// Base are base-model weights the method trains (full fine-tuning).
	Base []site.Param
}

// AdapterScope is the root scope of all adapters' variables.
const AdapterScope = "/adapters"

// Adapter is one named instance of a method.
type Adapter struct {
	// Name identifies the adapter: its weights live in "/adapters/<Name>".
	Name   string
	Method Method
	// Frozen adapters run but do not train (e.g. a loaded adapter used for inference
	// or stacked under a new one). Being attached means active; Frozen is separate.
	Frozen bool
}

// Scope is the GoMLX scope holding the adapter's weights.
func (a Adapter) Scope() string { return AdapterScope + "/" + a.Name }

type attached struct {
	Adapter
	res   Resolution
	sites map[string]bool
}

// Model is a base model's layout with adapters attached. It implements
// site.Hook: pass it to the base model's forward function.
type Model struct {
	Layout   site.Layout
	adapters []attached
}

// New attaches the adapters to a base model with the given layout. It fails,
// naming the adapter, when its name is not valid (see CheckName), when a
// method's configuration holds NaN or ±Inf or does not fit the model, when
// two adapters share a name, when two adapters of the same method type
// adapt the same site, or when two adapters claim the same base weight.
func New(l site.Layout, adapters ...Adapter) (*Model, error) {
	m := &Model{Layout: l}
	for _, a := range adapters {
		if err := m.attach(a); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *Model) attach(a Adapter) error {
	if err := CheckName(a.Name); err != nil {
		return err
	}
	if a.Method == nil {
		return fmt.Errorf("adapter %q: no method given", a.Name)
	}
	if err := checkFinite(a.Method); err != nil {
		return fmt.Errorf("adapter %q (%s): %w", a.Name, a.Method.Type(), err)
	}
	res, err := a.Method.Resolve(m.Layout)
	if err != nil {
		return fmt.Errorf("adapter %q (%s): %w", a.Name, a.Method.Type(), err)
	}
	at := attached{Adapter: a, res: res, sites: map[string]bool{}}
	for _, s := range res.Sites {
		at.sites[s.Name] = true
	}
	for _, other := range m.adapters {
		if other.Name == a.Name {
			return fmt.Errorf("adapter name %q is used twice", a.Name)
		}
		if other.Method.Type() == a.Method.Type() {
			for _, s := range res.Sites {
				if other.sites[s.Name] {
					return fmt.Errorf("adapter %q (%s): site %s is already adapted by adapter %q of the same method",
						a.Name, a.Method.Type(), s.Name, other.Name)
				}
			}
		}
		for _, p := range res.Base {
			if slices.ContainsFunc(other.res.Base, func(q site.Param) bool { return q.Name == p.Name }) {
				return fmt.Errorf("adapter %q (%s): weight %s is already trained by adapter %q (%s)",
					a.Name, a.Method.Type(), p.Name, other.Name, other.Method.Type())
			}
		}
	}
	m.adapters = append(m.adapters, at)
	return nil
}

// Adapters returns the attached adapters in the order they run.
func (m *Model) Adapters() []Adapter {
	out := make([]Adapter, len(m.adapters))
	for i, a := range m.adapters {
		out[i] = a.Adapter
	}
	return out
}

// Adapter returns the attached adapter with the given name.
func (m *Model) Adapter(name string) (Adapter, bool) {
	for _, a := range m.adapters {
		if a.Name == name {
			return a.Adapter, true
		}
	}
	return Adapter{}, false
}

// Resolution returns what the named adapter resolved to on this model.
func (m *Model) Resolution(name string) (Resolution, bool) {
	for _, a := range m.adapters {
		if a.Name == name {
			return a.res, true
		}
	}
	return Resolution{}, false
}

// Input implements site.Hook: every adapter at s runs in attachment order.
func (m *Model) Input(sc *mlmodel.Scope, s site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	if m == nil {
		return x, mask
	}
	for _, a := range m.adapters {
		if a.sites[s.Name] {
			x, mask = a.Method.Input(sc.Store().Scope(a.Scope()), s, x, mask)
		}
	}
	return x, mask
}

// Linear implements site.Hook: every adapter at s runs in attachment order,
// each seeing the output of the previous one as the base output.
func (m *Model) Linear(sc *mlmodel.Scope, s site.Site, x, y *graph.Node) *graph.Node {
	if m == nil {
		return y
	}
	for _, a := range m.adapters {
		if a.sites[s.Name] {
			y = a.Method.Linear(sc.Store().Scope(a.Scope()), s, x, y)
		}
	}
	return y
}

// Owner returns the adapter that trains the variable with the given
// scope-and-name path, if any: its own weights, or base weights it unfreezes.
// Frozen adapters own nothing.
func (m *Model) Owner(varPath string) (Adapter, bool) {
	for _, a := range m.adapters {
		if a.Frozen {
			continue
		}
		if strings.HasPrefix(varPath, a.Scope()+"/") {
			return a.Adapter, true
		}
		if slices.ContainsFunc(a.res.Base, func(p site.Param) bool { return p.Name == varPath }) {
			return a.Adapter, true
		}
	}
	return Adapter{}, false
}

// ApplyTrainable marks every variable in sc trainable exactly when an
// attached, non-frozen adapter owns it. GoMLX does not save trainability and
// some layers reset it on each build, so call this after the model function
// has built its graph, on every build (the training package does).
func (m *Model) ApplyTrainable(sc *mlmodel.Scope) {
	for v := range sc.IterVariables() {
		_, owned := m.Owner(v.Path())
		if v.Trainable != owned {
			v.SetTrainable(owned)
		}
	}
}
