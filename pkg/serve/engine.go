package serve

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/site"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// Options configure an Engine; zero fields take the defaults.
type Options struct {
	// Backend runs the graphs; nil takes backend.New().
	Backend compute.Backend
	// MaxBatch is the most examples one compiled graph runs at once (default 32); larger
	// calls are split.
	MaxBatch int
	// MaxNew is the number of tokens generated for an item that does not say (default 16);
	// MaxNewLimit is the most an item may ask for (default 64).
	MaxNew, MaxNewLimit int
	// IgnoreEnd keeps generating past the end token, so that every item of a batch runs
	// exactly its MaxNew steps: for benchmarks, where every method must do the same work.
	IgnoreEnd bool
}

// Engine serves one frozen base and any number of adapters, mixing tasks in one batch.
//
// Adapters of the mixed methods (AdaLink, LoRA, prompt tuning) are stacked per method into
// tables, slot 0 all zeros (the base alone), slot s the s-th adapter's weights zero-padded to
// the table's rank (or prompt length). The tables are inputs of the compiled graph, and every
// example brings its slot, so the graph gathers each example's weights: switching or mixing
// adapters changes only input values, never the graph. Graphs are cached by shape: batch
// sizes are padded to powers of two (up to MaxBatch), token lengths to multiples of 16 (up
// to the base's MaxLen; each decoding step runs only as many positions as its longest
// example has reached), table capacities and ranks to powers of two, so loading adapters
// recompiles only when a table outgrows its bucket. A batch compiles only the methods its examples use: one without
// adapters runs the bare base graph.
//
// Full fine-tuning adapters (and LoRA adapters loaded with Merge) are models of their own
// and run in batches of their task alone.
//
// An Engine is safe for concurrent use; batches run one at a time.
type Engine struct {
	b         compute.Backend
	name      string
	cfg       model.Config
	layout    site.Layout
	scope     *mlmodel.Scope
	tok       *tokenizer.Tokenizer
	baseHash  string
	head      site.Site
	opts      Options
	baseExecs *execCache

	regMu    sync.Mutex
	adapters map[string]*adapter
	snap     atomic.Pointer[snapshot]

	runMu    sync.Mutex
	compiles atomic.Int64
}

// New returns an engine serving base (as bases.Load returns it) with no adapters loaded.
// The engine only reads base.Scope.
func New(base *bases.Base, opts Options) (*Engine, error) {
	if base == nil || base.Scope == nil {
		return nil, errors.New("serve.New: no base given")
	}
	c := base.Config
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.HasText() {
		return nil, fmt.Errorf("serve: base %s has no text output to generate answers with", c.ModelName())
	}
	if base.Tokenizer == nil {
		return nil, fmt.Errorf("serve: base %s comes without a tokenizer", c.ModelName())
	}
	if opts.Backend == nil {
		b, err := backend.New()
		if err != nil {
			return nil, err
		}
		opts.Backend = b
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 32
	}
	if opts.MaxNewLimit <= 0 {
		opts.MaxNewLimit = 64
	}
	if opts.MaxNew <= 0 {
		opts.MaxNew = min(16, opts.MaxNewLimit)
	}
	hash, err := peft.BaseHash(base.Scope)
	if err != nil {
		return nil, fmt.Errorf("serve: base %s: %w", base.Name, err)
	}
	name := base.Name
	if name == "" {
		name = c.ModelName()
	}
	layout := c.Layout()
	head, ok := layout.Site(model.SiteLM)
	if !ok {
		return nil, fmt.Errorf("serve: base %s has no %s site", name, model.SiteLM)
	}
	e := &Engine{
		b: opts.Backend, name: name, cfg: c, layout: layout, scope: base.Scope.Store().RootScope(),
		tok: base.Tokenizer, baseHash: hash, head: head, opts: opts, adapters: map[string]*adapter{},
	}
	e.baseExecs = newExecCache(e, e.scope.Store())
	e.regMu.Lock()
	e.publish()
	e.regMu.Unlock()
	return e, nil
}

// BaseName is the name of the served base; BaseHash its weights' identity (peft.BaseHash).
func (e *Engine) BaseName() string { return e.name }

// BaseHash is the identity of the served base's weights, as adapter files record it.
func (e *Engine) BaseHash() string { return e.baseHash }

// Config is the base's model configuration.
func (e *Engine) Config() model.Config { return e.cfg }

// Tokenizer is the base's tokenizer.
func (e *Engine) Tokenizer() *tokenizer.Tokenizer { return e.tok }

// Options returns the engine's options with defaults filled in.
func (e *Engine) Options() Options { return e.opts }

// Compiles counts the graphs the engine has built and compiled so far, for tests and
// metrics: mixing adapters must not raise it.
func (e *Engine) Compiles() int64 { return e.compiles.Load() }

// Item is one generation request as the engine takes it.
type Item struct {
	// Adapter names a loaded adapter; empty is the base alone.
	Adapter string
	// Tokens is the prompt, [BOS] text [SEP] as Prompt lays it out (ids in [1, Vocab)).
	Tokens []int32
	// Image is nil or the image as ImageSize·ImageSize·Channels values in [0, 1], row-major
	// (the layout of tasks.Example.Image).
	Image []float32
	// MaxNew caps the generated tokens (0 = Options.MaxNew).
	MaxNew int
}

// Result is the answer to one Item.
type Result struct {
	Adapter string
	// Tokens are the generated ids, without the end token; Text is them decoded.
	Tokens []int32
	Text   string
	// Err is set when this item could not run (its adapter was unloaded meanwhile, or its
	// input does not fit); the other items of the call are unaffected.
	Err error
}

// InputError is an error in an item's input (as opposed to one of the server): the HTTP
// service answers it with 400.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func inputErr(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// Prompt lays text out as the lab's training and scoring do: [BOS] tokens [SEP].
func (e *Engine) Prompt(text string) []int32 { return e.PromptCut(text, 0) }

// PromptCut is Prompt with the text's tokens cut to the first n (n > 0), as the lab's task
// sources cut their prompts (tasks.Source.Prompts).
func (e *Engine) PromptCut(text string, n int) []int32 {
	ids := e.tok.Encode(text)
	if n > 0 && len(ids) > n {
		ids = ids[:n]
	}
	out := make([]int32, 0, len(ids)+2)
	out = append(out, tokenizer.BosID)
	out = append(out, ids...)
	return append(out, tokenizer.SepID)
}

// Check validates an item against the base and the loaded adapters without running it:
// unknown adapter (ErrUnknownAdapter), empty or overlong prompt, token ids outside the
// vocabulary, an image of the wrong size or where the base takes none (InputError).
func (e *Engine) Check(it Item) error {
	_, err := e.check(e.snap.Load(), it)
	return err
}

// check returns the item's adapter (nil for the base) after validating the item.
func (e *Engine) check(s *snapshot, it Item) (*adapter, error) {
	var a *adapter
	if it.Adapter != "" {
		var ok bool
		if a, ok = s.adapters[it.Adapter]; !ok {
			return nil, e.unknown(it.Adapter)
		}
	}
	if len(it.Tokens) == 0 {
		return nil, inputErr("empty prompt: give at least one token ([BOS] text [SEP], see Engine.Prompt)")
	}
	for _, t := range it.Tokens {
		if t <= 0 || int(t) >= e.cfg.Vocab {
			return nil, inputErr("token %d is outside the vocabulary [1, %d)", t, e.cfg.Vocab)
		}
	}
	maxNew := e.maxNew(it)
	if maxNew < 1 || maxNew > e.opts.MaxNewLimit {
		return nil, inputErr("max_new_tokens %d is out of range [1, %d]", it.MaxNew, e.opts.MaxNewLimit)
	}
	soft := 0
	if a != nil {
		soft = a.tokens
	}
	if need := soft + len(it.Tokens) + maxNew - 1; need > e.cfg.MaxLen {
		return nil, inputErr("too many tokens: the prompt is %d tokens ([BOS] and [SEP] included)%s and %d are to be generated, "+
			"which needs %d positions; base %s has %d (at most %d prompt tokens with this budget)",
			len(it.Tokens), softNote(soft), maxNew, need, e.name, e.cfg.MaxLen, e.cfg.MaxLen-soft-maxNew+1)
	}
	if it.Image != nil {
		if !e.cfg.HasImage() {
			return nil, inputErr("base %s takes no images (it is text-only)", e.name)
		}
		if want := e.cfg.ImageSize * e.cfg.ImageSize * e.cfg.Channels; len(it.Image) != want {
			return nil, inputErr("image has %d values, base %s takes %dx%dx%d = %d", len(it.Image), e.name,
				e.cfg.ImageSize, e.cfg.ImageSize, e.cfg.Channels, want)
		}
	}
	return a, nil
}

func softNote(n int) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprintf(", the adapter prepends %d soft tokens", n)
}

func (e *Engine) maxNew(it Item) int {
	if it.MaxNew == 0 {
		return e.opts.MaxNew
	}
	return it.MaxNew
}

// Generate answers the items by greedy decoding, each with its own adapter, mixing adapters
// in the same batches (up to MaxBatch items each). Items of a per-task model run in batches
// of their own. An item that cannot run gets Result.Err; the error return is for failures
// of the whole call (a graph that does not build).
//
// Each item's answer is the one it gets alone, with its adapter attached to the base by
// peft.New and decoded by model.Generate: the tests check this token for token, and the
// logits of the first step to float32 rounding (see NextLogits).
func (e *Engine) Generate(items []Item) ([]Result, error) {
	out, _, err := e.run(items, false)
	return out, err
}

// NextLogits returns, for each item, the logits [Vocab] of its first generated token, as the
// mixed batch computes them (the padding token's logit is -1e30).
func (e *Engine) NextLogits(items []Item) ([][]float32, error) {
	for i := range items {
		items[i].MaxNew = 1
	}
	res, logits, err := e.run(items, true)
	if err != nil {
		return nil, err
	}
	for _, r := range res {
		if r.Err != nil {
			return nil, r.Err
		}
	}
	return logits, nil
}

// group is a set of items that can share batches.
type group struct {
	perTask *adapter // nil for the mixed group
	images  bool
	idx     []int
}

func (e *Engine) run(items []Item, wantLogits bool) ([]Result, [][]float32, error) {
	e.runMu.Lock()
	defer e.runMu.Unlock()
	s := e.snap.Load()
	out := make([]Result, len(items))
	var logits [][]float32
	if wantLogits {
		logits = make([][]float32, len(items))
	}
	var groups []*group
	find := func(a *adapter, images bool) *group {
		var pt *adapter
		if a != nil && a.store != nil {
			pt = a
		}
		for _, g := range groups {
			if g.perTask == pt && g.images == images {
				return g
			}
		}
		g := &group{perTask: pt, images: images}
		groups = append(groups, g)
		return g
	}
	for i, it := range items {
		out[i].Adapter = it.Adapter
		a, err := e.check(s, it)
		if err != nil {
			out[i].Err = err
			continue
		}
		g := find(a, it.Image != nil)
		g.idx = append(g.idx, i)
	}
	for _, g := range groups {
		for start := 0; start < len(g.idx); start += e.opts.MaxBatch {
			idx := g.idx[start:min(start+e.opts.MaxBatch, len(g.idx))]
			gen, lg, err := e.runBatch(s, g, items, idx, wantLogits)
			if err != nil {
				return nil, nil, err
			}
			for k, i := range idx {
				out[i].Tokens = gen[k]
				out[i].Text = e.tok.Decode(untilEOS(gen[k]))
				if wantLogits {
					logits[i] = lg[k]
				}
			}
		}
	}
	return out, logits, nil
}

// graphLayout is what a batch's graph is built for, beyond its input shapes.
type graphLayout struct {
	images, logits bool
	ada            *adaTable
	lora           *loraTable
	prompt         *promptTable
}

func (l graphLayout) key() string {
	var b strings.Builder
	fmt.Fprintf(&b, "images=%v logits=%v", l.images, l.logits)
	if l.ada != nil {
		fmt.Fprintf(&b, " adalink%v%v", l.ada.sites, l.ada.acts)
	}
	if l.lora != nil {
		b.WriteString(" lora[")
		for _, s := range l.lora.sites {
			b.WriteString(s.Name + " ")
		}
		b.WriteString("]")
	}
	if l.prompt != nil {
		b.WriteString(" prompt")
	}
	return b.String()
}

func (e *Engine) runBatch(s *snapshot, g *group, items []Item, idx []int, wantLogits bool) ([][]int32, [][]float32, error) {
	lay := graphLayout{images: g.images, logits: wantLogits}
	cache := e.baseExecs
	var slots = map[string][]int32{}
	n := len(idx)
	nb := min(bucket(n, 1), e.opts.MaxBatch)
	if g.perTask != nil {
		cache = g.perTask.execs
	} else {
		for _, i := range idx {
			name := items[i].Adapter
			if name == "" {
				continue
			}
			f := s.adapters[name].family()
			switch f {
			case adalink.PeftType:
				lay.ada = s.ada
			case lora.PeftType:
				lay.lora = s.lora
			case prompt.PeftType:
				lay.prompt = s.prompt
			}
		}
		for _, f := range []string{adalink.PeftType, lora.PeftType, prompt.PeftType} {
			sl := make([]int32, nb)
			for k, i := range idx {
				if a := s.adapters[items[i].Adapter]; a != nil && a.family() == f {
					sl[k] = int32(s.slot[items[i].Adapter])
				}
			}
			slots[f] = sl
		}
	}

	// Lay the prompts out in a token buffer long enough for every item's answer.
	longest, steps := 1, 1
	for _, i := range idx {
		it := items[i]
		longest = max(longest, len(it.Tokens)+e.maxNew(it)-1)
		steps = max(steps, e.maxNew(it))
	}
	T := e.lengthBucket(longest)
	buf := make([]int32, nb*T)
	pos := make([]int32, nb)
	maxNew := make([]int, n)
	for k := range nb {
		if k >= n {
			buf[k*T] = tokenizer.BosID // padding rows: one token, no adapter
			continue
		}
		it := items[idx[k]]
		copy(buf[k*T:], it.Tokens)
		pos[k] = int32(len(it.Tokens) - 1)
		maxNew[k] = e.maxNew(it)
	}
	var images *tensors.Tensor
	if g.images {
		px := e.cfg.ImageSize * e.cfg.ImageSize * e.cfg.Channels
		flat := make([]float32, nb*px)
		for k, i := range idx {
			copy(flat[k*px:], items[i].Image)
		}
		images = tensors.FromFlatDataAndDimensions(flat, nb, e.cfg.ImageSize, e.cfg.ImageSize, e.cfg.Channels)
		defer images.FinalizeAll()
	}
	exec, err := cache.get(lay)
	if err != nil {
		return nil, nil, err
	}

	// The inputs that stay the same at every step.
	var fixed []any
	if images != nil {
		fixed = append(fixed, images)
	}
	slotTensor := func(f string) *tensors.Tensor { return tensors.FromFlatDataAndDimensions(slots[f], nb) }
	if t := lay.ada; t != nil {
		fixed = append(fixed, slotTensor(adalink.PeftType))
		if t.act != nil {
			fixed = append(fixed, t.act)
		}
		for _, sn := range t.sites {
			fixed = append(fixed, t.a[sn], t.b[sn])
		}
	}
	if t := lay.lora; t != nil {
		fixed = append(fixed, slotTensor(lora.PeftType), t.scale)
		for _, st := range t.sites {
			fixed = append(fixed, t.a[st.Name], t.b[st.Name])
		}
	}
	if t := lay.prompt; t != nil {
		fixed = append(fixed, slotTensor(prompt.PeftType), t.p, t.lens)
	}

	out := make([][]int32, n)
	var logits [][]float32
	done := make([]bool, n)
	for step := 0; step < steps; step++ {
		// Causal attention: positions after every example's last token change nothing, so
		// each step runs only the buffer's first ts positions (a length bucket).
		ts := e.lengthBucket(int(slices.Max(pos)) + 1)
		cur := make([]int32, nb*ts)
		for k := range nb {
			copy(cur[k*ts:(k+1)*ts], buf[k*T:k*T+ts])
		}
		args := append([]any{
			tensors.FromFlatDataAndDimensions(cur, nb, ts),
			tensors.FromFlatDataAndDimensions(slices.Clone(pos), nb),
		}, fixed...)
		var res []*tensors.Tensor
		err := catch.Error(func() (err error) { res, err = exec.Exec(args...); return })
		args[0].(*tensors.Tensor).FinalizeAll()
		args[1].(*tensors.Tensor).FinalizeAll()
		if err != nil {
			return nil, nil, fmt.Errorf("serve: generation step %d of a batch of %d (buffer %d tokens): %w", step, n, T, err)
		}
		ids := tensors.MustCopyFlatData[int32](res[0])
		if wantLogits && step == 0 {
			flat := tensors.MustCopyFlatData[float32](res[1])
			logits = make([][]float32, n)
			for k := range n {
				logits[k] = flat[k*e.cfg.Vocab : (k+1)*e.cfg.Vocab]
			}
		}
		for _, r := range res {
			r.FinalizeAll()
		}
		all := true
		for k := range n {
			if done[k] {
				continue
			}
			t := ids[k]
			if !e.opts.IgnoreEnd && e.cfg.EndToken > 0 && int(t) == e.cfg.EndToken {
				done[k] = true
				continue
			}
			out[k] = append(out[k], t)
			if len(out[k]) >= maxNew[k] {
				done[k] = true
				continue
			}
			pos[k]++
			buf[k*T+int(pos[k])] = t
			all = false
		}
		if all {
			break
		}
	}
	for k := range out {
		if out[k] == nil {
			out[k] = []int32{}
		}
	}
	return out, logits, nil
}

// lengthStep is the granularity of the token-length buckets.
const lengthStep = 16

// lengthBucket rounds a token length up to a multiple of lengthStep, at most MaxLen.
func (e *Engine) lengthBucket(n int) int {
	return min((n+lengthStep-1)/lengthStep*lengthStep, e.cfg.MaxLen)
}

// untilEOS cuts generated ids at the first end-of-sequence token.
func untilEOS(ids []int32) []int32 {
	if i := slices.Index(ids, tokenizer.EosID); i >= 0 {
		return ids[:i]
	}
	return ids
}

// execCache holds the compiled graphs of one weight store, one Exec per graph layout (each
// caches its input shapes).
type execCache struct {
	e     *Engine
	store *mlmodel.Store
	// hook is the per-task model's adapter hook (nil: the mixed hook, or none).
	hook  site.Hook
	mu    sync.Mutex
	execs map[string]*mlmodel.Exec
}

func newExecCache(e *Engine, st *mlmodel.Store) *execCache {
	return &execCache{e: e, store: st, execs: map[string]*mlmodel.Exec{}}
}

func (c *execCache) get(l graphLayout) (*mlmodel.Exec, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := l.key()
	if x, ok := c.execs[k]; ok {
		return x, nil
	}
	x, err := mlmodel.NewExec(c.e.b, c.store, c.e.stepFn(l, c.hook))
	if err != nil {
		return nil, fmt.Errorf("serve: %w", err)
	}
	x.SetMaxCache(256)
	c.execs[k] = x
	return x, nil
}

// retire releases the compiled graphs (an unloaded per-task model).
func (c *execCache) retire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, x := range c.execs {
		x.Finalize()
		delete(c.execs, k)
	}
}

// stepFn returns the graph of one decoding step for layout l: inputs tokens [B, T], pos [B]
// (each example's last real token), then the images and the tables in the order runBatch
// passes them; outputs the next token [B] (never padding) and, with l.logits, its logits
// [B, Vocab].
func (e *Engine) stepFn(l graphLayout, fixed site.Hook) func(*mlmodel.Scope, []*Node) []*Node {
	c := e.cfg
	return func(sc *mlmodel.Scope, in []*Node) []*Node {
		e.compiles.Add(1)
		tokens, pos := in[0], in[1]
		in = in[2:]
		take := func() *Node { x := in[0]; in = in[1:]; return x }
		inputs := model.Inputs{Tokens: tokens}
		if l.images {
			inputs.Images = take()
		}
		g := tokens.Graph()
		b, t := tokens.Shape().Dimensions[0], tokens.Shape().Dimensions[1]
		var hook site.Hook
		h := &mixHook{}
		soft := Zeros(g, shapes.Make(dtypes.Int32, b))
		if l.ada != nil || l.lora != nil || l.prompt != nil {
			hook = h
		} else if fixed != nil {
			hook = fixed
		}
		if tb := l.ada; tb != nil {
			slots := take()
			if tb.act != nil {
				h.adaAct, h.adaActs = gatherSlots(take(), slots), tb.acts
			}
			h.ada = map[string][2]*Node{}
			for _, sn := range tb.sites {
				a, bb := take(), take()
				h.ada[sn] = [2]*Node{gatherSlots(a, slots), gatherSlots(bb, slots)}
			}
		}
		if tb := l.lora; tb != nil {
			slots := take()
			h.loraScale = gatherSlots(take(), slots)
			h.lora = map[string][2]*Node{}
			for _, st := range tb.sites {
				a, bb := take(), take()
				h.lora[st.Name] = [2]*Node{gatherSlots(a, slots), gatherSlots(bb, slots)}
			}
		}
		if l.prompt != nil {
			slots := take()
			h.prompt = gatherSlots(take(), slots)
			h.promptLen = gatherSlots(take(), slots)
			h.textLen = min(c.MaxLen, t+h.prompt.Shape().Dimensions[1])
			soft = h.promptLen
		}
		hidden, _ := model.Encode(sc, c, hook, inputs)
		offset := hidden.Shape().Dimensions[1] - t // image patches, plus the prompt room
		if l.prompt != nil {
			offset = hidden.Shape().Dimensions[1] - h.textLen
		}
		at := Add(AddScalar(ConvertDType(pos, dtypes.Int32), offset), soft)
		idx := Stack([]*Node{Iota(g, shapes.Make(dtypes.Int32, b), 0), at}, -1)
		last := Gather(hidden, idx) // [B, d]
		logits := model.Linear(sc.Store().RootScope(), hook, e.head, last)
		isPad := Equal(Iota(g, shapes.Make(dtypes.Int32, b, c.Vocab), 1), Scalar(g, dtypes.Int32, 0))
		logits = Where(isPad, Scalar(g, dtypes.Float32, -1e30), logits)
		next := ConvertDType(ArgMax(logits, -1), dtypes.Int32)
		if l.logits {
			return []*Node{next, logits}
		}
		return []*Node{next}
	}
}
