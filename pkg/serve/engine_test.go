package serve

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX style.
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/site"
)

func loadBase(t testing.TB, name string) *bases.Base {
	t.Helper()
	b, err := bases.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// spec is one synthetic adapter of a test.
type spec struct {
	name   string
	method peft.Method
}

// textSpecs mix every method, ranks that pad differently, two activations, two target sets
// and two prompt lengths.
var textSpecs = []spec{
	{"ada4", adalink.Config{Rank: 4}},
	{"ada6gelu", adalink.Config{Rank: 6, Activation: "gelu"}},
	{"ada16relu", adalink.Config{Rank: 16, Activation: "relu"}},
	{"lora-qv4", lora.Config{Rank: 4, Alpha: 8}},
	{"lora-all8", lora.Config{Rank: 8, Targets: []string{lora.AllLinear, "head/lm"}}},
	{"prompt3", prompt.Config{Tokens: 3}},
	{"prompt8", prompt.Config{Tokens: 8}},
	{"ft-head", full.Config{Preset: "head"}},
	{"lora-merged", lora.Config{Rank: 4, Targets: []string{"block/*/mlp/up"}}},
	{"lora-pertask", lora.Config{Rank: 4, Alpha: 8}},
	{"prompt-pertask", prompt.Config{Tokens: 5}},
}

// textOptions are how TestMixedEqualsAlone loads the specs.
var textOptions = map[string]LoadOptions{
	"lora-merged":    {Merge: true},
	"lora-pertask":   {PerTask: true},
	"prompt-pertask": {PerTask: true},
}

// writeSpecs saves the specs' synthetic adapters under dir and returns their directories.
func writeSpecs(t testing.TB, base *bases.Base, dir string, specs []spec) map[string]string {
	t.Helper()
	dirs := map[string]string{}
	for i, s := range specs {
		d := filepath.Join(dir, s.name)
		if err := SyntheticAdapter(d, base, s.name, s.method, uint64(100+i)); err != nil {
			t.Fatal(err)
		}
		dirs[s.name] = d
	}
	return dirs
}

// alone runs one item the way the lab does, with nothing of package serve: a fresh copy of
// the base, the adapter loaded by peft.LoadAdapter and attached by peft.New, then
// model.Generate on a batch of one (with LoRA merged by lora.Merge where asked), and the
// first step's logits from model.LMLogits.
func alone(t testing.TB, b compute.Backend, baseName, dir string, merge bool, it Item) ([]int32, []float32) {
	t.Helper()
	base := loadBase(t, baseName)
	var hook *peft.Model
	if dir != "" {
		a, err := peft.LoadAdapter(dir, base.Scope, base.Config.Layout())
		if err != nil {
			t.Fatal(err)
		}
		if hook, err = peft.New(base.Config.Layout(), a); err != nil {
			t.Fatal(err)
		}
		if merge {
			if err := lora.Merge(base.Scope, hook, a.Name); err != nil {
				t.Fatal(err)
			}
		}
	}
	var images *tensors.Tensor
	c := base.Config
	if it.Image != nil {
		images = tensors.FromFlatDataAndDimensions(slices.Clone(it.Image), 1, c.ImageSize, c.ImageSize, c.Channels)
	}
	gen, err := model.Generate(b, base.Scope, c, hookOrNil(hook), [][]int32{it.Tokens}, images, it.MaxNew)
	if err != nil {
		t.Fatal(err)
	}
	exec, err := mlmodel.NewExec(b, base.Scope.Store(), func(sc *mlmodel.Scope, in []*Node) *Node {
		inputs := model.Inputs{Tokens: in[0]}
		if len(in) > 1 {
			inputs.Images = in[1]
		}
		return model.LMLogits(sc, c, hookOrNil(hook), inputs)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	args := []any{[][]int32{it.Tokens}}
	if images != nil {
		args = append(args, images)
	}
	out, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	flat := tensors.MustCopyFlatData[float32](out[0])
	v := c.Vocab
	last := len(it.Tokens) - 1
	return gen[0], flat[last*v : (last+1)*v]
}

func hookOrNil(m *peft.Model) site.Hook {
	if m == nil {
		return nil
	}
	return m
}

// textPrompts are prompts of several lengths (so batches pad them differently).
var textPrompts = []string{
	"is this mail spam or ham? win a free cruise now, click here",
	"what is the topic of this quote? the unexamined life is not worth living",
	"a",
	"is this review positive or negative? the film was long, slow and in the end rather moving; the actors did what they could with a thin script",
}

// maxLogitDiff is the largest |a-b| over the real tokens (id 0, padding, is skipped), and
// the largest |b|.
func maxLogitDiff(a, b []float32) (diff, scale float64) {
	for i := 1; i < len(a); i++ {
		diff = max(diff, math.Abs(float64(a[i])-float64(b[i])))
		scale = max(scale, math.Abs(float64(b[i])))
	}
	return
}

// logitTol is the float32 tolerance of the logit comparison: batching and padding change
// the shapes of the products, and so possibly the order of their sums.
const logitTol = 1e-4

// TestMixedEqualsAlone runs every adapter (and the bare base) in one mixed batch, each on
// several prompts, and checks each example against the same example run alone by the lab's
// own code path: the generated tokens exactly, the first step's logits within float32
// tolerance (the observed difference is logged).
func TestMixedEqualsAlone(t *testing.T) {
	b := backendtest.Backend(t)
	base := loadBase(t, bases.Text)
	dirs := writeSpecs(t, base, t.TempDir(), textSpecs)
	e, err := New(base, Options{Backend: b, MaxBatch: 64})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range textSpecs {
		if _, err := e.LoadWith(s.name, dirs[s.name], textOptions[s.name]); err != nil {
			t.Fatal(err)
		}
	}
	var items []Item
	names := append([]string{""}, func() (n []string) {
		for _, s := range textSpecs {
			n = append(n, s.name)
		}
		return
	}()...)
	for i, p := range textPrompts {
		for j, n := range names {
			if (i+j)%2 == 1 && i > 0 { // half of the pairs: enough, and each adapter on several prompts
				continue
			}
			items = append(items, Item{Adapter: n, Tokens: e.Prompt(p), MaxNew: 3 + (i+j)%5})
		}
	}
	res, err := e.Generate(slices.Clone(items))
	if err != nil {
		t.Fatal(err)
	}
	logits, err := e.NextLogits(slices.Clone(items))
	if err != nil {
		t.Fatal(err)
	}
	worst, differ := 0.0, 0
	baseAnswer := map[string]string{}
	for i, it := range items {
		if res[i].Err != nil {
			t.Fatalf("item %d (%s): %v", i, it.Adapter, res[i].Err)
		}
		want, wantLogits := alone(t, b, bases.Text, dirs[it.Adapter], it.Adapter == "lora-merged", it)
		if !slices.Equal(res[i].Tokens, want) {
			t.Errorf("item %d, adapter %q: mixed batch generated %v, alone %v", i, it.Adapter, res[i].Tokens, want)
		}
		d, scale := maxLogitDiff(logits[i], wantLogits)
		worst = max(worst, d/max(1, scale))
		if d > logitTol*max(1, scale) {
			t.Errorf("item %d, adapter %q: logits differ by %g (scale %g) from the item alone", i, it.Adapter, d, scale)
		}
		key := string(fmt.Sprint(it.Tokens))
		if it.Adapter == "" {
			baseAnswer[key] = fmt.Sprint(want)
		} else if baseAnswer[key] != "" && baseAnswer[key] != fmt.Sprint(want) {
			differ++
		}
	}
	t.Logf("%d items in one call; worst relative logit difference from the items alone: %.3g", len(items), worst)
	if differ == 0 {
		t.Error("no adapter changed any answer of the base: the test would not notice adapters being ignored")
	}
}

// TestMixingNeverRecompiles warms the graphs of a batch shape, then runs other mixes of the
// loaded adapters and loads and unloads adapters within the tables' buckets: the compile
// count must not move. Outgrowing a bucket (a fifth LoRA adapter, with slot 0 the table's
// capacity is 4 + 1 > 4) compiles once more.
func TestMixingNeverRecompiles(t *testing.T) {
	b := backendtest.Backend(t)
	base := loadBase(t, bases.Text)
	specs := []spec{
		{"a1", adalink.Config{Rank: 4}}, {"a2", adalink.Config{Rank: 2}},
		{"l1", lora.Config{Rank: 4}}, {"l2", lora.Config{Rank: 2}},
		{"l3", lora.Config{Rank: 4}}, {"l4", lora.Config{Rank: 4}}, {"l5", lora.Config{Rank: 4}},
	}
	dirs := writeSpecs(t, base, t.TempDir(), specs)
	e, err := New(base, Options{Backend: b, MaxBatch: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a1", "l1", "l2"} {
		if _, err := e.Load(n, dirs[n]); err != nil {
			t.Fatal(err)
		}
	}
	p := e.Prompt("is this mail spam or ham? cheap watches")
	batch := func(names ...string) []Item {
		var items []Item
		for _, n := range names {
			items = append(items, Item{Adapter: n, Tokens: p, MaxNew: 2})
		}
		return items
	}
	run := func(names ...string) {
		t.Helper()
		res, err := e.Generate(batch(names...))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	run("a1", "l1", "", "l2") // AdaLink and LoRA in one graph
	warm := e.Compiles()
	if warm == 0 {
		t.Fatal("no graph was compiled")
	}
	run("l2", "a1", "a1", "")
	run("l1", "l1", "a1", "l2")
	if _, err := e.Load("a2", dirs["a2"]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load("l3", dirs["l3"]); err != nil {
		t.Fatal(err)
	}
	run("a2", "l3", "a1", "l1")
	if err := e.Unload("l1"); err != nil {
		t.Fatal(err)
	}
	run("a2", "l3", "a1", "l2")
	if got := e.Compiles(); got != warm {
		t.Errorf("mixing, loading and unloading within the buckets compiled %d more graphs", got-warm)
	}
	for _, n := range []string{"l1", "l4", "l5"} {
		if _, err := e.Load(n, dirs[n]); err != nil {
			t.Fatal(err)
		}
	}
	run("a2", "l5", "a1", "l2")
	if got := e.Compiles(); got != warm+1 {
		t.Errorf("after the LoRA table outgrew its capacity: %d compiles, want %d", got, warm+1)
	}
}

// TestRejects checks the errors for unknown adapters, adapters of other bases and inputs
// that do not fit.
func TestRejects(t *testing.T) {
	b := backendtest.Backend(t)
	text := loadBase(t, bases.Text)
	e, err := New(text, Options{Backend: b, MaxNewLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	raw, instruct := loadBase(t, bases.VLMRaw), loadBase(t, bases.VLMInstruct)
	if err := SyntheticAdapter(filepath.Join(dir, "raw"), raw, "raw", adalink.Config{Rank: 4, Modalities: []string{"text"}}, 1); err != nil {
		t.Fatal(err)
	}
	_, err = e.Load("raw", filepath.Join(dir, "raw"))
	if err == nil || !strings.Contains(err.Error(), "peftlab-vlm-raw") {
		t.Errorf("an adapter of vlm-raw loaded onto the text base: %v", err)
	}
	// Same architecture, other weights: the hash tells them apart.
	ei, err := New(instruct, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ei.Load("raw", filepath.Join(dir, "raw"))
	if err == nil || !strings.Contains(err.Error(), "hash") {
		t.Errorf("an adapter of vlm-raw loaded onto vlm-instruct: %v", err)
	}
	if _, err := e.Load("x", filepath.Join(dir, "missing")); err == nil {
		t.Error("loading a missing directory succeeded")
	}
	if err := SyntheticAdapter(filepath.Join(dir, "ok"), text, "ok", adalink.Config{Rank: 4}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load("ok", filepath.Join(dir, "ok")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Load("ok", filepath.Join(dir, "ok")); !errors.Is(err, ErrAdapterExists) {
		t.Errorf("loading a name twice: %v", err)
	}
	if _, err := e.Load(" bad\x00", filepath.Join(dir, "ok")); err == nil {
		t.Error("an unsafe name was accepted")
	}
	if err := e.Unload("nope"); !errors.Is(err, ErrUnknownAdapter) {
		t.Errorf("unloading an unknown adapter: %v", err)
	}

	p := e.Prompt("hello")
	long := make([]int32, text.Config.MaxLen)
	for i := range long {
		long[i] = 9
	}
	cases := []struct {
		name string
		it   Item
		want string
	}{
		{"unknown adapter", Item{Adapter: "nope", Tokens: p}, "unknown adapter"},
		{"empty", Item{}, "empty prompt"},
		{"bad token", Item{Tokens: []int32{2, 99999}}, "outside the vocabulary"},
		{"padding token", Item{Tokens: []int32{2, 0, 4}}, "outside the vocabulary"},
		{"too long", Item{Tokens: long}, "too many tokens"},
		{"too many new", Item{Tokens: p, MaxNew: 9}, "max_new_tokens"},
		{"image on text", Item{Tokens: p, Image: make([]float32, 12)}, "takes no images"},
	}
	for _, c := range cases {
		err := e.Check(c.it)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Check = %v, want %q", c.name, err, c.want)
		}
		res, gerr := e.Generate([]Item{c.it, {Tokens: p, MaxNew: 2}})
		if gerr != nil {
			t.Fatalf("%s: Generate failed as a whole: %v", c.name, gerr)
		}
		if res[0].Err == nil || res[1].Err != nil || len(res[1].Tokens) == 0 {
			t.Errorf("%s: Generate gave %v / %v; want the bad item refused and the good one answered", c.name, res[0].Err, res[1])
		}
	}
	if err := e.Check(Item{Adapter: "nope", Tokens: p}); !errors.Is(err, ErrUnknownAdapter) {
		t.Errorf("unknown adapter error does not wrap ErrUnknownAdapter: %v", err)
	}
	var ie *InputError
	if err := e.Check(Item{Tokens: long}); !errors.As(err, &ie) {
		t.Errorf("too many tokens is not an InputError: %v", err)
	}
	if err := ei.Check(Item{Tokens: p, Image: make([]float32, 5)}); err == nil || !strings.Contains(err.Error(), "32x32x3") {
		t.Errorf("wrong image size: %v", err)
	}
}

// TestMixedImages is TestMixedEqualsAlone on the vision-language base: images, AdaLink on
// the image input, on both inputs or shared, LoRA on the patch projection, prompt tuning.
func TestMixedImages(t *testing.T) {
	b := backendtest.Backend(t)
	base := loadBase(t, bases.VLMInstruct)
	specs := []spec{
		{"ada-image", adalink.Config{Rank: 4, Modalities: []string{"image"}}},
		{"ada-both", adalink.Config{Rank: 8, Activation: "tanh"}},
		{"ada-shared", adalink.Config{Rank: 4, Shared: true}},
		{"lora-patch", lora.Config{Rank: 4, Targets: []string{"embed/image/patch", "block/*/attn/{q,v}"}}},
		{"prompt4", prompt.Config{Tokens: 4}},
		{"ft-last", full.Config{Preset: "last:1"}},
	}
	dirs := writeSpecs(t, base, t.TempDir(), specs)
	e, err := New(base, Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range specs {
		if _, err := e.Load(s.name, dirs[s.name]); err != nil {
			t.Fatal(err)
		}
	}
	c := base.Config
	rng := rand.New(rand.NewPCG(7, 7))
	image := func() []float32 {
		px := make([]float32, c.ImageSize*c.ImageSize*c.Channels)
		for i := range px {
			px[i] = float32(rng.IntN(256)) / 255
		}
		return px
	}
	var items []Item
	for i, n := range []string{"", "ada-image", "ada-both", "ada-shared", "lora-patch", "prompt4", "ft-last", "ada-both", ""} {
		items = append(items, Item{Adapter: n, Tokens: e.Prompt([]string{"what digit is this?", "describe the image", "is this footwear?"}[i%3]),
			Image: image(), MaxNew: 4})
	}
	res, err := e.Generate(slices.Clone(items))
	if err != nil {
		t.Fatal(err)
	}
	logits, err := e.NextLogits(slices.Clone(items))
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i, it := range items {
		if res[i].Err != nil {
			t.Fatal(res[i].Err)
		}
		want, wantLogits := alone(t, b, bases.VLMInstruct, dirs[it.Adapter], false, it)
		if !slices.Equal(res[i].Tokens, want) {
			t.Errorf("item %d, adapter %q: mixed batch generated %v, alone %v", i, it.Adapter, res[i].Tokens, want)
		}
		d, scale := maxLogitDiff(logits[i], wantLogits)
		worst = max(worst, d/max(1, scale))
		if d > logitTol*max(1, scale) {
			t.Errorf("item %d, adapter %q: logits differ by %g (scale %g)", i, it.Adapter, d, scale)
		}
	}
	t.Logf("worst relative logit difference from the items alone: %.3g", worst)
}
