package prompt

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/site"
)

func attach(t *testing.T, c model.Config, cfg Config) *peft.Model {
	t.Helper()
	m, err := peft.New(c.Layout(), peft.Adapter{Name: "pt", Method: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

const promptPath = "/adapters/pt/input/text/prompt"

func promptValue(t *testing.T, sc *mlmodel.Scope) []float32 {
	t.Helper()
	scope, name := mlmodel.SplitPath(promptPath)
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	if v == nil {
		t.Fatalf("no variable %s", promptPath)
	}
	return peftest.Flat(t, v.MustValue())
}

// tableRows returns the rows of the base's text embedding table at ids, flat.
func tableRows(t *testing.T, sc *mlmodel.Scope, ids []int32) []float32 {
	t.Helper()
	emb := peftest.Flat(t, sc.Store().GetVariable(mlmodel.JoinPath("/embed/text", "embeddings")).MustValue())
	d := len(emb) / peftest.MM.Vocab
	var out []float32
	for _, id := range ids {
		out = append(out, emb[int(id)*d:int(id+1)*d]...)
	}
	return out
}

// Parameter counts are p·d.
func TestParamCountsClosedForm(t *testing.T) {
	for _, d := range []int{8, 16, 32} {
		c := peftest.MM
		c.Width = d
		c.MaxLen = 40
		for _, p := range []int{1, 5, 20} {
			plan := attach(t, c, Config{Tokens: p}).Plan()
			if plan.Trainable != p*d || plan.Frozen != c.Layout().NumParams() {
				t.Errorf("d=%d p=%d: trainable %d frozen %d, want %d and %d", d, p, plan.Trainable, plan.Frozen, p*d, c.Layout().NumParams())
			}
			if len(plan.Rows) != 1 || plan.Rows[0].Param.Name != promptPath || plan.Rows[0].Site != "input/text" {
				t.Errorf("plan rows %+v", plan.Rows)
			}
		}
	}
}

// The zero Config is a working adapter with the documented defaults, and its JSON and String
// show them.
func TestZeroConfigTakesDefaults(t *testing.T) {
	res, err := Config{}.Resolve(peftest.Text.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.New) != 1 || res.New[0].Shape[0] != DefaultTokens {
		t.Errorf("weights %v, want [%d, width]", res.New, DefaultTokens)
	}
	raw, err := json.Marshal(Config{})
	if err != nil || string(raw) != `{"num_virtual_tokens":8,"modality":"text","init":"vocab"}` {
		t.Errorf("JSON of the zero Config: %s (%v)", raw, err)
	}
	if s := (Config{}).String(); s != "PromptTuning(p=8, init=vocab)" {
		t.Errorf("String() = %q", s)
	}
}

func TestResolveErrors(t *testing.T) {
	imageOnly := model.Config{Width: 8, Heads: 2, Blocks: 1, MLPDim: 8, ImageSize: 4, PatchSize: 2, Channels: 3}
	short := peftest.Text
	short.MaxLen = DefaultTokens
	cases := []struct {
		cfg  Config
		base model.Config
		want []string
	}{
		{Config{}, short, []string{"num_virtual_tokens 8", "no room"}},
		{Config{Tokens: -2}, peftest.Text, []string{"num_virtual_tokens -2", "at least one", "0 means the default, 8"}},
		{Config{Tokens: 2, Modality: "image"}, peftest.MM, []string{`"image"`, "text only"}},
		{Config{Tokens: 2, Init: "zeros"}, peftest.Text, []string{`"zeros"`, `"vocab"`, `"random"`}},
		{Config{Tokens: 2}, imageOnly, []string{"no text input", "it has: image"}},
		{Config{Tokens: 12}, peftest.Text, []string{"num_virtual_tokens 12", "only 12 positions"}},
		{Config{Tokens: 30}, peftest.MM, []string{"num_virtual_tokens 30", "no room"}},
	}
	for _, tc := range cases {
		_, err := tc.cfg.Resolve(tc.base.Layout())
		if err == nil {
			t.Errorf("%+v on %s: no error", tc.cfg, tc.base.ModelName())
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v on %s: error %q does not mention %q", tc.cfg, tc.base.ModelName(), err, w)
			}
		}
	}
	if _, err := (Config{Tokens: 11}).Resolve(peftest.Text.Layout()); err != nil {
		t.Errorf("11 soft tokens on MaxLen 12: %v", err)
	}
}

// The soft tokens lengthen the encoded sequence (after the image patches,
// before the text, marked real), LMLogits keep the caller's shape, and the
// outputs change.
func TestForwardShapesAndMask(t *testing.T) {
	const p = 3
	c := peftest.MM
	sc := peftest.NewCtx(t)
	baseCls, baseLM := peftest.Forward(t, sc, c, nil)
	m := attach(t, c, Config{Tokens: p})
	outs := peftest.Run(t, sc, c, m, func(sc *mlmodel.Scope, in model.Inputs) []*graph.Node {
		hidden, mask := model.Encode(sc, c, m, in)
		return []*graph.Node{hidden, mask, model.LMLogits(sc, c, m, in), model.Classify(sc, c, m, in)}
	})
	patches, tokens := c.Patches(), 5
	if got, want := outs[0].Shape().Dimensions, []int{2, patches + p + tokens, c.Width}; !slices.Equal(got, want) {
		t.Errorf("hidden shape %v, want %v", got, want)
	}
	mask := outs[1].Value().([][]bool)
	wantRow1 := []bool{true, true, true, true, true, true, true, true, true, true, false, false}
	if !slices.Equal(mask[1], wantRow1) {
		t.Errorf("mask of the padded row = %v, want %v", mask[1], wantRow1)
	}
	if got, want := outs[2].Shape().Dimensions, []int{2, tokens, c.Vocab}; !slices.Equal(got, want) {
		t.Errorf("LMLogits shape %v, want %v", got, want)
	}
	lm, cls := peftest.Flat(t, outs[2]), peftest.Flat(t, outs[3])
	if d := peftest.MaxDiff(lm, baseLM); d < 1e-4 || d > 1e200 {
		t.Errorf("LM logits moved %g from the base; the prompt should change them", d)
	}
	if d := peftest.MaxDiff(cls, baseCls); d < 1e-4 || d > 1e200 {
		t.Errorf("class logits moved %g from the base; the prompt should change them", d)
	}
}

// On a fresh base, adapter and base built together in one graph, the prompt
// starts as the sampled rows of the very table the model uses.
func TestVocabInitFreshBase(t *testing.T) {
	sc := peftest.NewCtx(t)
	m := attach(t, peftest.MM, Config{Tokens: 4, Seed: 11})
	peftest.Forward(t, sc, peftest.MM, m)
	ids := SampleTokens(peftest.MM.Vocab, 4, 11)
	if got, want := promptValue(t, sc), tableRows(t, sc, ids); !slices.Equal(got, want) {
		t.Errorf("prompt = %v, want rows %v of the embedding table = %v", got, ids, want)
	}
	checkTrainable(t, sc)
}

// On a base loaded from a checkpoint file the prompt copies the loaded table,
// and the base computes what it computed before saving.
func TestVocabInitLoadedBase(t *testing.T) {
	dir := t.TempDir()
	sc := peftest.NewCtx(t)
	baseCls, _ := peftest.Forward(t, sc, peftest.MM, nil)
	h, err := checkpoint.Build(sc.Store()).Dir(dir).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	saved := tableRows(t, sc, SampleTokens(peftest.MM.Vocab, 5, 3))

	loaded := mlmodel.NewStore().RootScope()
	if _, err := checkpoint.Build(loaded.Store()).Dir(dir).Done(); err != nil {
		t.Fatal(err)
	}
	m := attach(t, peftest.MM, Config{Tokens: 5, Seed: 3})
	peftest.Forward(t, loaded, peftest.MM, m)
	if got := promptValue(t, loaded); !slices.Equal(got, saved) {
		t.Errorf("prompt on the loaded base = %v, want the saved table's rows %v", got, saved)
	}
	cls, _ := peftest.Forward(t, loaded, peftest.MM, nil)
	if d := peftest.MaxDiff(cls, baseCls); d != 0 {
		t.Errorf("loaded base differs from the saved one by %g", d)
	}
}

// An existing prompt (trained, or loaded from an adapter file) is used as it
// is, never re-initialised.
func TestExistingPromptIsKept(t *testing.T) {
	sc := peftest.NewCtx(t)
	m := attach(t, peftest.Text, Config{Tokens: 2})
	_, lm0 := peftest.Forward(t, sc, peftest.Text, m)
	scope, name := mlmodel.SplitPath(promptPath)
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	trained := make([]float32, 2*peftest.Text.Width)
	for i := range trained {
		trained[i] = float32(i%5) - 2
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(trained, 2, peftest.Text.Width)); err != nil {
		t.Fatal(err)
	}
	_, lm1 := peftest.Forward(t, sc, peftest.Text, m)
	if got := promptValue(t, sc); !slices.Equal(got, trained) {
		t.Errorf("prompt was re-initialised: %v", got)
	}
	if peftest.MaxDiff(lm0, lm1) < 1e-4 {
		t.Error("a different prompt gave the same logits")
	}
}

func TestRandomInit(t *testing.T) {
	sc := peftest.NewCtx(t)
	m := attach(t, peftest.Text, Config{Tokens: 6, Init: InitRandom, Seed: 5})
	peftest.Forward(t, sc, peftest.Text, m)
	got := promptValue(t, sc)
	want := peftest.Flat(t, RandomValue(6, peftest.Text.Width, 5, dtypes.Float32))
	if !slices.Equal(got, want) {
		t.Errorf("random prompt = %v, want RandomValue(...) = %v", got, want)
	}
	lo, hi := slices.Min(got), slices.Max(got)
	if lo < -0.5 || hi >= 0.5 || hi-lo < 0.5 {
		t.Errorf("random prompt spans [%g, %g], want most of [-0.5, 0.5)", lo, hi)
	}
	other := peftest.Flat(t, RandomValue(6, peftest.Text.Width, 6, dtypes.Float32))
	if slices.Equal(other, want) {
		t.Error("seeds 5 and 6 gave the same random prompt")
	}
}

// A prompt that overflows MaxLen with the batch's text fails at build time
// with the model's message.
func TestTooLongAtBuild(t *testing.T) {
	sc := peftest.NewCtx(t)
	m := attach(t, peftest.Text, Config{Tokens: 8}) // 8 + 5 tokens > MaxLen 12
	tokens, _ := peftest.Batch(peftest.Text)
	_, err := mlmodel.ExecOnce(peftest.Backend(t), sc.Store(), func(sc *mlmodel.Scope, tok *graph.Node) *graph.Node {
		return model.LMLogits(sc, peftest.Text, m, model.Inputs{Tokens: tok})
	}, tokens)
	if err == nil || !strings.Contains(err.Error(), "exceeds MaxLen 12") || !strings.Contains(err.Error(), "8 inserted") {
		t.Errorf("err = %v, want the MaxLen overflow named", err)
	}
}

// Only the prompt trains, and the loss reaches it.
func TestGradientReachesPrompt(t *testing.T) {
	sc := peftest.NewCtx(t)
	m := attach(t, peftest.Text, Config{Tokens: 3})
	outs := peftest.Run(t, sc, peftest.Text, m, func(sc *mlmodel.Scope, in model.Inputs) []*graph.Node {
		logits := model.LMLogits(sc, peftest.Text, m, in)
		m.ApplyTrainable(sc)
		loss := graph.ReduceAllSum(graph.Mul(logits, logits))
		return sc.BuildTrainableVariablesGradientsGraph(loss)
	})
	if len(outs) != 1 {
		t.Fatalf("%d trainable variables, want only the prompt", len(outs))
	}
	if got := outs[0].Shape().Dimensions; !slices.Equal(got, []int{3, peftest.Text.Width}) {
		t.Fatalf("gradient shape %v", got)
	}
	norm := 0.0
	for _, g := range peftest.Flat(t, outs[0]) {
		norm += float64(g) * float64(g)
	}
	if norm == 0 {
		t.Error("gradient of the loss with respect to the prompt is zero")
	}
}

func checkTrainable(t *testing.T, sc *mlmodel.Scope) {
	t.Helper()
	for v := range sc.IterVariables() {
		if want := v.Path() == promptPath; v.Trainable != want {
			t.Errorf("%s: trainable = %v, want %v", v.Path(), v.Trainable, want)
		}
	}
}

func TestSampleTokens(t *testing.T) {
	a, b := SampleTokens(100, 30, 1), SampleTokens(100, 30, 1)
	if !slices.Equal(a, b) {
		t.Error("same seed, different tokens")
	}
	if slices.Equal(a, SampleTokens(100, 30, 2)) {
		t.Error("seeds 1 and 2 drew the same tokens")
	}
	seen := map[int32]bool{}
	for _, id := range a {
		if id < 1 || id >= 100 || seen[id] {
			t.Fatalf("tokens %v: want distinct ids in [1, 100)", a)
		}
		seen[id] = true
	}
	// Every non-padding token when p = vocab-1; repeats only beyond that.
	all := SampleTokens(13, 12, 4)
	sorted := slices.Sorted(slices.Values(all))
	for i, id := range sorted {
		if id != int32(i+1) {
			t.Fatalf("p = vocab-1 drew %v, want a permutation of 1..12", all)
		}
	}
	for _, id := range SampleTokens(5, 50, 4) {
		if id < 1 || id >= 5 {
			t.Fatalf("p > vocab drew id %d outside [1, 5)", id)
		}
	}
}

func TestInitialValueErrors(t *testing.T) {
	if _, err := InitialValue(tensors.FromValue([]float32{1, 2}), 1, 0, dtypes.Float32); err == nil {
		t.Error("a rank-1 table was accepted")
	}
	if _, err := InitialValue(tensors.FromValue([][]float32{{1, 2}}), 1, 0, dtypes.Float32); err == nil {
		t.Error("a table with only the padding row was accepted")
	}
	v, err := InitialValue(tensors.FromValue([][]float64{{0, 0}, {1, 2}, {3, 4}}), 2, 9, dtypes.Float32)
	if err != nil {
		t.Fatal(err)
	}
	got := v.Value().([][]float32)
	for i, id := range SampleTokens(3, 2, 9) {
		if want := []float32{float32(2*id - 1), float32(2 * id)}; !slices.Equal(got[i], want) {
			t.Errorf("row %d = %v, want %v (token %d)", i, got[i], want, id)
		}
	}
}

func TestRegistryAndJSON(t *testing.T) {
	m, err := peft.NewConfig(PeftType)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"num_virtual_tokens":8,"init":"random","seed":3}`), m); err != nil {
		t.Fatal(err)
	}
	if got, want := *m.(*Config), (Config{Tokens: 8, Init: InitRandom, Seed: 3}); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if m.Type() != "PROMPT_TUNING" {
		t.Errorf("Type = %q", m.Type())
	}
	res, err := m.Resolve(peftest.Text.Layout())
	if err != nil || fmt.Sprint(res.Sites) != fmt.Sprint([]site.Site{{Name: "input/text", Kind: site.Input, In: 8, Out: 8, Modality: "text"}}) {
		t.Errorf("pointer config resolves to %+v, %v", res, err)
	}
}
