package serve

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/site"
)

// How an adapter is served.
const (
	// Mixed adapters (AdaLink, LoRA unmerged, prompt tuning) share the base's compiled graph:
	// their weights are graph inputs, gathered per example, so any mix of them runs in one
	// batch.
	Mixed = "mixed"
	// PerTask adapters (full fine-tuning, LoRA merged) are a model of their own: a copy of
	// the base weights with the task's changes, run in batches of that task alone.
	PerTask = "per-task model"
)

// Info describes a loaded adapter.
type Info struct {
	Name string `json:"name"`
	// Method is the adapter's peft_type: ADALINK, LORA, PROMPT_TUNING or FULL.
	Method string `json:"method"`
	// Config is the method's configuration in one line, e.g. "AdaLink(r=8, all modalities)".
	Config string `json:"config"`
	// Rank is AdaLink's or LoRA's r (0 for the other methods); SoftTokens is prompt tuning's p.
	Rank       int `json:"rank"`
	SoftTokens int `json:"soft_tokens,omitempty"`
	// Base is the name of the base the engine serves (the adapter was checked against its
	// weights); BaseHash is that base's identity, as adapter files record it.
	Base     string `json:"base"`
	BaseHash string `json:"base_hash"`
	// Params is the number of trainable parameters the adapter holds.
	Params int `json:"trainable_params"`
	// Serving is Mixed or PerTask.
	Serving string `json:"serving"`
	// Source is the directory the adapter was read from.
	Source string `json:"source"`
}

// LoadOptions change how an adapter is served.
type LoadOptions struct {
	// Merge folds a LoRA adapter into a copy of the base weights (lora.Merge) and serves it
	// as a per-task model, instead of gathering its low-rank weights per example.
	Merge bool
	// PerTask serves an AdaLink, LoRA or prompt-tuning adapter as a model of its own: the
	// base with the adapter attached by peft.New (the layers the lab trains with), in
	// batches of its task alone. It is the single-adapter reference of the benchmarks.
	PerTask bool
}

// adapter is one loaded adapter and the host copies of its weights that the tables are
// built from.
type adapter struct {
	info Info

	// AdaLink: φ, and per input site A [d, r] and B [r, d], row-major.
	// LoRA: per Linear site A [in, r] and B [r, out], and scale α/r.
	rank    int
	act     string
	weights map[string][2][]float32
	sites   map[string]site.Site
	scale   float32
	// Prompt tuning: the soft prompt [p, d].
	prompt []float32
	tokens int

	// Per-task models: the task's own store of base weights (and adapter weights, with
	// hook, the adapter attached by peft.New), and its compiled graphs.
	store *mlmodel.Store
	hook  site.Hook
	execs *execCache
}

func (a *adapter) family() string {
	if a.store != nil {
		return PerTask
	}
	return a.info.Method
}

// ErrUnknownAdapter is wrapped by the errors for adapter names the engine has not loaded.
var ErrUnknownAdapter = errors.New("unknown adapter")

// ErrAdapterExists is wrapped by Load's error for a name already in use.
var ErrAdapterExists = errors.New("adapter name already in use")

// Load reads the adapter saved in dir (peft.SaveAdapter's layout: adapter_config.json and
// adapter_model.safetensors) and serves it under name. peft.LoadAdapter checks the files and
// the base: an adapter trained on another base (another weights hash), a damaged file, an
// unknown method or weights that do not fit are refused with its message. Loading never
// recompiles a graph unless the stacked tables outgrow their bucket (see Engine).
func (e *Engine) Load(name, dir string) (Info, error) {
	return e.LoadWith(name, dir, LoadOptions{})
}

// LoadWith is Load with options.
func (e *Engine) LoadWith(name, dir string, opts LoadOptions) (Info, error) {
	fail := func(err error) (Info, error) {
		return Info{}, fmt.Errorf("load adapter %q from %s: %w", name, dir, err)
	}
	if err := CheckName(name); err != nil {
		return fail(err)
	}
	e.regMu.Lock()
	_, dup := e.adapters[name]
	e.regMu.Unlock()
	if dup {
		return fail(fmt.Errorf("%w: unload it first (DELETE /v1/adapters/%s)", ErrAdapterExists, name))
	}
	cfg, err := peft.ReadAdapterConfig(dir)
	if err != nil {
		return fail(err)
	}
	if opts.Merge && cfg.Method.Type() != lora.PeftType {
		return fail(fmt.Errorf("only LoRA adapters merge; this one is %s", cfg.Method.Type()))
	}
	// The base weights the adapter replaces (full fine-tuning) or changes (a merge) get
	// copies of their own; the others are shared with the engine's base.
	own := map[string]bool{}
	if res, err := cfg.Method.Resolve(e.layout); err == nil {
		for _, p := range res.Base {
			own["/"+strings.TrimPrefix(p.Name, "/")] = true
		}
		if opts.Merge {
			for _, st := range res.Sites {
				own[st.Scope()+"/weights"] = true
			}
		}
	}
	scratch, err := e.copyBase(own)
	if err != nil {
		return fail(err)
	}
	var pa peft.Adapter
	if err := catch.Error(func() (err error) { pa, err = peft.LoadAdapter(dir, scratch.RootScope(), e.layout); return }); err != nil {
		return Info{}, fmt.Errorf("load adapter %q: %w", name, err)
	}
	res, err := pa.Method.Resolve(e.layout)
	if err != nil {
		return fail(err)
	}
	a := &adapter{info: Info{
		Name: name, Method: pa.Method.Type(), Config: fmt.Sprint(pa.Method), Base: e.name, BaseHash: e.baseHash,
		Params: params(res), Serving: Mixed, Source: dir,
	}}
	value := func(rel string) ([]float32, error) {
		path := pa.Scope() + "/" + rel
		v := scratch.GetVariable(path)
		if v == nil || !v.HasValue() {
			return nil, fmt.Errorf("internal error: %s was not loaded", path)
		}
		t, err := v.Value()
		if err != nil {
			return nil, err
		}
		return tensors.CopyFlatData[float32](t)
	}
	switch m := pa.Method.(type) {
	case adalink.Config:
		a.rank, a.act, a.weights = m.Rank, m.Activation, map[string][2][]float32{}
		if a.act == "identity" {
			a.act = ""
		}
		a.info.Rank = m.Rank
		for _, s := range res.Sites {
			scope := s.Name
			if m.Shared {
				scope = "shared"
			}
			av, err := value(scope + "/A")
			if err != nil {
				return fail(err)
			}
			bv, err := value(scope + "/B")
			if err != nil {
				return fail(err)
			}
			a.weights[s.Name] = [2][]float32{av, bv}
		}
	case lora.Config:
		d := m.WithDefaults()
		a.rank, a.scale, a.info.Rank = d.Rank, float32(d.Scale()), d.Rank
		if opts.Merge {
			pm, err := peft.New(e.layout, pa)
			if err != nil {
				return fail(err)
			}
			if err := lora.Merge(scratch.RootScope(), pm, pa.Name); err != nil {
				return fail(err)
			}
			a.info.Config += ", merged"
			a.store = scratch
			break
		}
		a.weights, a.sites = map[string][2][]float32{}, map[string]site.Site{}
		for _, s := range res.Sites {
			av, err := value(s.Name + "/" + lora.VarA)
			if err != nil {
				return fail(err)
			}
			bv, err := value(s.Name + "/" + lora.VarB)
			if err != nil {
				return fail(err)
			}
			a.weights[s.Name], a.sites[s.Name] = [2][]float32{av, bv}, s
		}
	case prompt.Config:
		a.tokens, a.info.SoftTokens = m.Tokens, m.Tokens
		if a.prompt, err = value(res.New[0].Name); err != nil {
			return fail(err)
		}
	case full.Config:
		a.store = scratch
	default:
		return fail(fmt.Errorf("method %s cannot be served: the engine serves %s, %s, %s and %s adapters",
			pa.Method.Type(), adalink.PeftType, lora.PeftType, prompt.PeftType, full.PeftType))
	}
	if opts.PerTask && a.store == nil {
		pm, err := peft.New(e.layout, pa)
		if err != nil {
			return fail(err)
		}
		a.store, a.hook = scratch, pm
		a.info.Config += ", per task"
	}
	if a.store != nil {
		a.info.Serving = PerTask
		a.execs = newExecCache(e, a.store)
		a.execs.hook = a.hook
	}

	e.regMu.Lock()
	defer e.regMu.Unlock()
	if _, dup := e.adapters[name]; dup {
		return fail(fmt.Errorf("%w: unload it first", ErrAdapterExists))
	}
	e.adapters[name] = a
	e.publish()
	return a.info, nil
}

// MaxNameLen is the longest adapter name the engine serves.
const MaxNameLen = 200

// CheckName reports whether name can name a served adapter: 1 to MaxNameLen bytes of valid
// UTF-8 without control characters or surrounding spaces. Unlike peft.CheckName (which names
// variable scopes) it allows spaces and slashes, so the lab's run names ("AdaLink r=8") and
// "<run id>/<adapter>" serve as they are.
func CheckName(name string) error {
	switch {
	case name == "":
		return errors.New("adapter name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("adapter name %.20q... is %d bytes long, at most %d are allowed", name, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("adapter name %q is not valid UTF-8", name)
	case strings.TrimSpace(name) != name:
		return fmt.Errorf("adapter name %q starts or ends with a space", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("adapter name %q holds a control character", name)
	}
	return nil
}

// params counts the trainable parameters of a resolution: the new weights, or the base
// weights a full fine-tuning trains.
func params(res peft.Resolution) int {
	n := 0
	for _, p := range append(slices.Clone(res.New), res.Base...) {
		n += p.Size()
	}
	return n
}

// copyBase returns a new store holding the base weights: sharing the base's tensors, except
// for the weights in own, which get copies of their own (a per-task model replaces them:
// Variable.SetValue frees the tensor it replaces).
func (e *Engine) copyBase(own map[string]bool) (*mlmodel.Store, error) {
	st := mlmodel.NewStore()
	for v := range e.scope.Store().IterVariables() {
		if !peft.IsBaseVariable(v.Path()) {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return nil, fmt.Errorf("base weight %s: %w", v.Path(), err)
		}
		if own[v.Path()] {
			if t, err = t.LocalClone(); err != nil {
				return nil, fmt.Errorf("copy base weight %s: %w", v.Path(), err)
			}
		}
		nv, err := st.CreateVariable(v.Path(), t)
		if err != nil {
			return nil, err
		}
		nv.Trainable = false
	}
	return st, nil
}

// Unload stops serving the named adapter. Batches already running finish with it; requests
// still waiting for it fail with ErrUnknownAdapter.
func (e *Engine) Unload(name string) error {
	e.regMu.Lock()
	defer e.regMu.Unlock()
	a, ok := e.adapters[name]
	if !ok {
		return e.unknown(name)
	}
	delete(e.adapters, name)
	e.publish()
	if a.execs != nil {
		a.execs.retire()
	}
	return nil
}

// Adapters lists the loaded adapters by name.
func (e *Engine) Adapters() []Info {
	s := e.snap.Load()
	out := make([]Info, 0, len(s.adapters))
	for _, a := range s.adapters {
		out = append(out, a.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Adapter returns the named adapter's Info.
func (e *Engine) Adapter(name string) (Info, bool) {
	a, ok := e.snap.Load().adapters[name]
	if !ok {
		return Info{}, false
	}
	return a.info, true
}

// unknown is the error for a name that is not loaded; e.regMu or a snapshot is consistent
// enough for its list.
func (e *Engine) unknown(name string) error {
	names := make([]string, 0)
	for n := range e.snap.Load().adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	list := "none are loaded"
	if len(names) > 0 {
		if len(names) > 20 {
			names = append(names[:20], fmt.Sprintf("... (%d in all)", len(names)))
		}
		list = "loaded: " + strings.Join(names, ", ")
	}
	return fmt.Errorf("%w %q (%s; an empty name is the base alone)", ErrUnknownAdapter, name, list)
}

// snapshot is the engine's adapters and their stacked tables at one moment; batches run on
// the snapshot current when they start, so loading and unloading never disturb them.
type snapshot struct {
	adapters map[string]*adapter
	slot     map[string]int // slot of a mixed adapter in its family's table (0 = none)
	ada      *adaTable
	lora     *loraTable
	prompt   *promptTable
}

// adaTable stacks the AdaLink adapters: slot s holds adapter s's A and B, zero-padded to
// the table's rank, at every input site any of them adapts (zeros where it does not).
type adaTable struct {
	cap, rank int
	sites     []string
	a, b      map[string]*tensors.Tensor // [cap, d, rank], [cap, rank, d]
	acts      []string                   // activations in use; acts[0] = "" (identity)
	act       *tensors.Tensor            // [cap] Int32, index into acts; nil when all are identity
}

// loraTable stacks the LoRA adapters the same way, per Linear site.
type loraTable struct {
	cap, rank int
	sites     []site.Site
	a, b      map[string]*tensors.Tensor // [cap, in, rank], [cap, rank, out]
	scale     *tensors.Tensor            // [cap] Float32
}

// promptTable stacks the soft prompts, zero-padded to the longest, with their lengths.
type promptTable struct {
	cap, tokens int
	p           *tensors.Tensor // [cap, tokens, d]
	lens        *tensors.Tensor // [cap] Int32
}

// Buckets: table capacities and ranks are rounded up to powers of two (at least minBucket),
// so loading another adapter rarely changes a graph's input shapes.
const minBucket = 4

func bucket(n, least int) int {
	b := least
	for b < n {
		b *= 2
	}
	return b
}

// publish rebuilds the tables from e.adapters and makes them current. Called with e.regMu.
func (e *Engine) publish() {
	s := &snapshot{adapters: map[string]*adapter{}, slot: map[string]int{}}
	byFamily := map[string][]*adapter{}
	names := make([]string, 0, len(e.adapters))
	for n := range e.adapters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		a := e.adapters[n]
		s.adapters[n] = a
		f := a.family()
		if f == PerTask {
			continue
		}
		byFamily[f] = append(byFamily[f], a)
		s.slot[n] = len(byFamily[f]) // slot 0 is the zero adapter
	}
	d := e.cfg.Width
	if as := byFamily[adalink.PeftType]; len(as) > 0 {
		t := &adaTable{cap: bucket(len(as)+1, minBucket), acts: []string{""}, a: map[string]*tensors.Tensor{}, b: map[string]*tensors.Tensor{}}
		maxRank := 0
		for _, a := range as {
			maxRank = max(maxRank, a.rank)
			for sn := range a.weights {
				if !slices.Contains(t.sites, sn) {
					t.sites = append(t.sites, sn)
				}
			}
			if !slices.Contains(t.acts, a.act) {
				t.acts = append(t.acts, a.act)
			}
		}
		sort.Strings(t.sites)
		t.rank = bucket(maxRank, minBucket)
		for _, sn := range t.sites {
			A := make([]float32, t.cap*d*t.rank)
			B := make([]float32, t.cap*t.rank*d)
			for i, a := range as {
				w, ok := a.weights[sn]
				if !ok {
					continue
				}
				padInto(A[(i+1)*d*t.rank:], w[0], d, a.rank, t.rank)
				copy(B[(i+1)*t.rank*d:], w[1]) // rows beyond a.rank stay zero
			}
			t.a[sn] = tensors.FromFlatDataAndDimensions(A, t.cap, d, t.rank)
			t.b[sn] = tensors.FromFlatDataAndDimensions(B, t.cap, t.rank, d)
		}
		if len(t.acts) > 1 {
			ids := make([]int32, t.cap)
			for i, a := range as {
				ids[i+1] = int32(slices.Index(t.acts, a.act))
			}
			t.act = tensors.FromFlatDataAndDimensions(ids, t.cap)
		}
		s.ada = t
	}
	if ls := byFamily[lora.PeftType]; len(ls) > 0 {
		t := &loraTable{cap: bucket(len(ls)+1, minBucket), a: map[string]*tensors.Tensor{}, b: map[string]*tensors.Tensor{}}
		maxRank := 0
		for _, a := range ls {
			maxRank = max(maxRank, a.rank)
		}
		for _, st := range e.layout.Sites { // layout order
			if slices.ContainsFunc(ls, func(a *adapter) bool { _, ok := a.weights[st.Name]; return ok }) {
				t.sites = append(t.sites, st)
			}
		}
		t.rank = bucket(maxRank, minBucket)
		scale := make([]float32, t.cap)
		for i, a := range ls {
			scale[i+1] = a.scale
		}
		t.scale = tensors.FromFlatDataAndDimensions(scale, t.cap)
		for _, st := range t.sites {
			A := make([]float32, t.cap*st.In*t.rank)
			B := make([]float32, t.cap*t.rank*st.Out)
			for i, a := range ls {
				w, ok := a.weights[st.Name]
				if !ok {
					continue
				}
				padInto(A[(i+1)*st.In*t.rank:], w[0], st.In, a.rank, t.rank)
				copy(B[(i+1)*t.rank*st.Out:], w[1])
			}
			t.a[st.Name] = tensors.FromFlatDataAndDimensions(A, t.cap, st.In, t.rank)
			t.b[st.Name] = tensors.FromFlatDataAndDimensions(B, t.cap, t.rank, st.Out)
		}
		s.lora = t
	}
	if ps := byFamily[prompt.PeftType]; len(ps) > 0 {
		t := &promptTable{cap: bucket(len(ps)+1, minBucket)}
		longest := 0
		for _, a := range ps {
			longest = max(longest, a.tokens)
		}
		t.tokens = bucket(longest, minBucket)
		P := make([]float32, t.cap*t.tokens*d)
		lens := make([]int32, t.cap)
		for i, a := range ps {
			copy(P[(i+1)*t.tokens*d:], a.prompt)
			lens[i+1] = int32(a.tokens)
		}
		t.p = tensors.FromFlatDataAndDimensions(P, t.cap, t.tokens, d)
		t.lens = tensors.FromFlatDataAndDimensions(lens, t.cap)
		s.prompt = t
	}
	e.snap.Store(s)
}

// padInto copies src [rows, r] into dst [rows, R] (R >= r), leaving the extra columns zero.
func padInto(dst, src []float32, rows, r, R int) {
	for i := range rows {
		copy(dst[i*R:i*R+r], src[i*r:(i+1)*r])
	}
}
