package trainer

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
)

func setValue(t *testing.T, sc *mlmodel.Scope, scope, name string, edit func([]float32)) {
	t.Helper()
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	if v == nil {
		t.Fatalf("no variable %s/%s", scope, name)
	}
	data := tensors.MustCopyFlatData[float32](v.MustValue())
	edit(data)
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(data, v.Shape().Dimensions...)); err != nil {
		t.Fatal(err)
	}
}

// TestNonFiniteLossStops plants a NaN in a base weight: the first step's
// loss is NaN and training stops with an error naming step 0.
func TestNonFiniteLossStops(t *testing.T) {
	sc := newBase(t, tiny, 1)
	setValue(t, sc, "/final_ln", "gain", func(d []float32) { d[3] = float32(math.NaN()) })
	m := mustPeft(t, tiny, peft.Adapter{Name: "a", Method: adalink.Config{Rank: 2}})
	tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 10, BatchSize: 8, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	src := majoritySource(t)
	b, _ := src.TrainBatch(0, 8, 0)
	_, err = tr.Step(b)
	if err == nil || !strings.Contains(err.Error(), "step 0: training loss is NaN") {
		t.Fatalf("got error %v, want one saying the loss of step 0 is NaN", err)
	}
	if tr.Record().Error != err.Error() || len(tr.Record().Steps) != 0 || tr.Steps() != 0 {
		t.Errorf("record after the failed step: error %q, %d steps", tr.Record().Error, len(tr.Record().Steps))
	}
}

// TestHugeLearningRateStops trains with an absurd learning rate: the weights
// blow up and the run stops on the first non-finite loss, after step 0.
func TestHugeLearningRateStops(t *testing.T) {
	sc := newBase(t, tiny, 1)
	m := mustPeft(t, tiny, peft.Adapter{Name: "ft", Method: full.Config{}})
	tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 50, BatchSize: 8, LR: 1e30})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tr.Run(majoritySource(t))
	if err == nil {
		t.Fatalf("training with lr=1e30 finished without error; losses %v", rec.Losses())
	}
	t.Log(err)
	if !strings.Contains(err.Error(), "training loss is") || !strings.Contains(err.Error(), "learning rate 1e+30") {
		t.Errorf("error %q does not say the loss went non-finite and the learning rate", err)
	}
	if n := len(rec.Steps); n == 0 || n >= 50 || !strings.HasPrefix(err.Error(), "step "+itoa(n)+":") {
		t.Errorf("stopped after %d good steps with %q", n, err)
	}
	if rec.Error == "" {
		t.Error("the record does not say why the run stopped")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// nanAt is a Source whose training batch at step `at` has a NaN weight.
type nanAt struct {
	Source
	at int
}

func (s nanAt) TrainBatch(step, size int, seed int64) (Batch, error) {
	b, err := s.Source.TrainBatch(step, size, seed)
	if step == s.at {
		w := tensors.MustCopyFlatData[float32](b.Weights)
		w[5] = float32(math.NaN())
		b.Weights = tensors.FromFlatDataAndDimensions(w, b.Weights.Shape().Dimensions...)
	}
	return b, err
}

// lmBase is a tiny language model.
var lmBase = model.Config{Name: "tiny-lm", Vocab: 12, Width: 16, Heads: 2, Blocks: 1, MLPDim: 32, MaxLen: 8}

// countingData returns sequences that count up modulo 11 from a random
// start (tokens 1..11), with targets shifted by one and the last position
// weighted 0: the next token is always predictable.
func countingData(seed uint64, n int) Batch {
	r := rand.New(rand.NewPCG(seed, 7))
	const T = 8
	var toks, targets []int32
	var w []float32
	for range n {
		start := r.IntN(11)
		for p := range T {
			toks = append(toks, int32(1+(start+p)%11))
			targets = append(targets, int32(1+(start+p+1)%11))
			w = append(w, float32(min(1, T-1-p)))
		}
	}
	return Batch{Tokens: tensors.FromFlatDataAndDimensions(toks, n, T), Targets: tensors.FromFlatDataAndDimensions(targets, n, T),
		Weights: tensors.FromFlatDataAndDimensions(w, n, T)}
}

func TestNaNInputStopsAtItsStep(t *testing.T) {
	mem, err := NewMemory(countingData(1, 64), countingData(2, 16))
	if err != nil {
		t.Fatal(err)
	}
	m := mustPeft(t, lmBase, peft.Adapter{Name: "l", Method: lora.Config{Rank: 2}})
	tr, err := New(testBackend(t), mlmodel.NewStore().RootScope(), lmBase, m, Config{Steps: 10, BatchSize: 8, LR: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tr.Run(nanAt{mem, 3})
	if err == nil || !strings.HasPrefix(err.Error(), "step 3: batch Weights[5] is NaN") {
		t.Fatalf("got %v, want an error naming step 3 and the NaN weight", err)
	}
	if len(rec.Steps) != 3 {
		t.Errorf("record has %d steps, want the 3 before the bad batch", len(rec.Steps))
	}
}

// TestLanguageModelLearns trains a tiny LM on counting sequences with FT and
// with AdaLink and checks perplexity falls.
func TestLanguageModelLearns(t *testing.T) {
	mem, err := NewMemory(countingData(1, 128), countingData(2, 32))
	if err != nil {
		t.Fatal(err)
	}
	for _, mc := range []struct {
		name   string
		method peft.Method
		lr     float64
		want   float64 // final perplexity must be below this fraction of the start
	}{{"FT", full.Config{}, 1e-2, 0.3}, {"AdaLink", adalink.Config{Rank: 4}, 3e-2, 0.7}} {
		t.Run(mc.name, func(t *testing.T) {
			sc := mlmodel.NewStore().RootScope()
			m := mustPeft(t, lmBase, peft.Adapter{Name: "a", Method: mc.method})
			tr, err := New(testBackend(t), sc, lmBase, m, Config{Steps: 80, BatchSize: 16, LR: mc.lr, Seed: 3, Schedule: Cosine, Warmup: 5})
			if err != nil {
				t.Fatal(err)
			}
			rec, err := tr.Run(mem)
			if err != nil {
				t.Fatal(err)
			}
			first, last := rec.Evals[0], rec.Evals[len(rec.Evals)-1]
			t.Logf("%s: perplexity %.2f -> %.2f, token accuracy %.2f -> %.2f", mc.name, first.Perplexity, last.Perplexity, first.Accuracy, last.Accuracy)
			if math.Abs(first.Perplexity-math.Exp(first.Loss)) > 1e-9 || first.Weight != 32*7 {
				t.Errorf("eval metrics inconsistent: %+v (want weight %d target tokens)", first.Metrics, 32*7)
			}
			if !(last.Perplexity < mc.want*first.Perplexity) {
				t.Errorf("perplexity went from %.2f to %.2f, want below %.0f%% of the start", first.Perplexity, last.Perplexity, 100*mc.want)
			}
		})
	}
}

// TestSameSeedSameNumbers runs the same training twice from the same base
// and gets bit-identical losses and weights; another seed gives other numbers.
func TestSameSeedSameNumbers(t *testing.T) {
	run := func(seed int64) (*Record, map[string][]float32) {
		sc := newBase(t, tiny, 1)
		m := mustPeft(t, tiny, peft.Adapter{Name: "l", Method: lora.Config{Rank: 2, Dropout: 0.1}})
		tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 15, BatchSize: 16, LR: 1e-2, Seed: seed, EvalEvery: 5})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := tr.Run(majoritySource(t))
		if err != nil {
			t.Fatal(err)
		}
		return rec, snapshot(sc)
	}
	r1, w1 := run(5)
	r2, w2 := run(5)
	r3, _ := run(6)
	if !slices.Equal(r1.Losses(), r2.Losses()) {
		t.Errorf("same seed, different losses:\n%v\n%v", r1.Losses(), r2.Losses())
	}
	for name, v := range w1 {
		if strings.HasPrefix(name, "/adapters/") && !bitsEqual(v, w2[name]) {
			t.Errorf("same seed, different final %s", name)
		}
	}
	if len(r1.Evals) != 4 { // Before step 0, after 5, 10 and 15.
		t.Errorf("%d evaluations, want 4 (EvalEvery 5 over 15 steps)", len(r1.Evals))
	}
	if slices.Equal(r1.Losses(), r3.Losses()) {
		t.Error("seeds 5 and 6 gave identical losses: the seed is not used")
	}
}

// TestScheduleReachesOptimizer checks the learning rate set from the host
// is the one AdamW uses: Adam's first update moves each weight by lr·g/|g|,
// so the largest change of a weight matrix after one step is that step's lr.
func TestScheduleReachesOptimizer(t *testing.T) {
	sc := newBase(t, tiny, 1)
	m := mustPeft(t, tiny, peft.Adapter{Name: "head", Method: full.Config{Preset: "head"}})
	cfg := Config{Steps: 10, BatchSize: 32, LR: 0.01, Warmup: 4, Schedule: Linear}
	tr, err := New(testBackend(t), sc, tiny, m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(sc)["/head/cls/weights"]
	b, _ := majoritySource(t).TrainBatch(0, 32, 0)
	if _, err := tr.Step(b); err != nil {
		t.Fatal(err)
	}
	after := snapshot(sc)["/head/cls/weights"]
	maxDelta := 0.0
	for i := range before {
		maxDelta = max(maxDelta, math.Abs(float64(after[i]-before[i])))
	}
	if want := cfg.LRAt(0); math.Abs(maxDelta-want) > 1e-3*want {
		t.Errorf("largest first update %.6g, want the step-0 learning rate %.6g", maxDelta, want)
	}
	if got := tr.Record().Steps[0].LR; got != 0.0025 {
		t.Errorf("record says lr %g at step 0, want 0.0025", got)
	}
}

func TestLRAt(t *testing.T) {
	c := Config{Steps: 10, LR: 1, Warmup: 2}
	want := map[Schedule][]float64{
		Constant: {0.5, 1, 1, 1, 1, 1, 1, 1, 1, 1},
		Linear:   {0.5, 1, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125},
		Cosine:   {0.5, 1, 1, 0.9619397662556434, 0.8535533905932737, 0.6913417161825449, 0.5, 0.3086582838174552, 0.14644660940672627, 0.03806023374435663},
	}
	for sched, w := range want {
		c.Schedule = sched
		for s, lr := range w {
			if got := c.LRAt(s); math.Abs(got-lr) > 1e-12 {
				t.Errorf("%s: LRAt(%d) = %g, want %g", sched, s, got, lr)
			}
		}
	}
}

// A Schedule is its name in JSON, as when it was a plain string.
func TestScheduleJSON(t *testing.T) {
	raw, err := json.Marshal(Config{Steps: 1, Schedule: Cosine})
	if err != nil || !strings.Contains(string(raw), `"schedule":"cosine"`) {
		t.Fatalf("JSON %s (%v)", raw, err)
	}
	var back Config
	if err := json.Unmarshal(raw, &back); err != nil || back.Schedule != Cosine {
		t.Errorf("decoded %+v (%v)", back, err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Steps: 0, BatchSize: -1, LR: math.NaN(), WeightDecay: -1, Warmup: 3, Schedule: "step", EvalEvery: -2}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, w := range []string{"steps", "batch_size", "lr", "weight_decay", "warmup", `schedule "step" is not one of constant, cosine, linear`, "eval_every"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
	if err := (Config{Steps: 1, BatchSize: 1, LR: 1e-3}).Validate(); err != nil {
		t.Errorf("minimal config rejected: %v", err)
	}
	if _, err := New(testBackend(t), mlmodel.NewStore().RootScope(), tiny, mustPeft(t, tiny, peft.Adapter{Name: "f", Method: adalink.Config{Rank: 2}, Frozen: true}),
		Config{Steps: 1, BatchSize: 1, LR: 1e-3}); err == nil || !strings.Contains(err.Error(), "nothing to train") {
		t.Errorf("only frozen adapters: got %v, want 'nothing to train'", err)
	}
}

func TestBadBatches(t *testing.T) {
	tok := func(v ...[]int32) *tensors.Tensor { return tensors.FromValue(v) }
	lab := func(v ...int32) *tensors.Tensor { return tensors.FromValue(v) }
	cases := []struct {
		name string
		b    Batch
		want string
	}{
		{"no inputs", Batch{Labels: lab(1)}, "no inputs"},
		{"no targets", Batch{Tokens: tok([]int32{1, 2})}, "no targets"},
		{"both targets", Batch{Tokens: tok([]int32{1, 2}), Labels: lab(1), Targets: tok([]int32{2, 3})}, "both Labels"},
		{"sizes disagree", Batch{Tokens: tok([]int32{1, 2}), Labels: lab(1, 0)}, "disagree"},
		{"token out of range", Batch{Tokens: tok([]int32{1, 16}), Labels: lab(1)}, "Tokens[1] = 16 is outside [0, 16)"},
		{"label out of range", Batch{Tokens: tok([]int32{1, 2}), Labels: lab(2)}, "Labels[0] = 2 is outside [0, 2)"},
		{"too long", Batch{Tokens: tok(make([]int32, 13)), Labels: lab(0)}, "at most 12"},
		{"wrong dtype", Batch{Tokens: tensors.FromValue([][]float32{{1}}), Labels: lab(0)}, "want rank 2 Int32"},
		{"targets shape", Batch{Tokens: tok([]int32{1, 2}), Targets: tok([]int32{1})}, "Targets"},
		{"images on a text model", Batch{Images: tensors.FromShape(tensors.FromValue([][][][]float32{{{{1}}}}).Shape()), Labels: lab(0)}, "no image input"},
	}
	tr, err := New(testBackend(t), mlmodel.NewStore().RootScope(), tiny, nil, Config{Steps: 1, BatchSize: 1, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		_, err := tr.Step(c.b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got error %v, want one containing %q", c.name, err, c.want)
		}
	}
	// A good batch, then one with another layout.
	if _, err := tr.Step(Batch{Tokens: tok([]int32{1, 2}), Labels: lab(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Step(Batch{Tokens: tok([]int32{1, 2}), Targets: tok([]int32{2, 3})}); err == nil || !strings.Contains(err.Error(), "layout changed") {
		t.Errorf("layout change: got %v", err)
	}
}

func TestMemorySource(t *testing.T) {
	const n = 10
	data := make([]int32, n)
	for i := range data {
		data[i] = int32(i)
	}
	all := Batch{Tokens: tensors.FromFlatDataAndDimensions(data, n, 1), Labels: tensors.FromFlatDataAndDimensions(data, n)}
	mem, err := NewMemory(all, all)
	if err != nil {
		t.Fatal(err)
	}
	seen := func(seed int64) []int32 {
		var out []int32
		for step := range 5 { // 5 batches of 4 = 2 epochs of 10.
			b, err := mem.TrainBatch(step, 4, seed)
			if err != nil {
				t.Fatal(err)
			}
			toks, labels := tensors.MustCopyFlatData[int32](b.Tokens), tensors.MustCopyFlatData[int32](b.Labels)
			if !slices.Equal(toks, labels) {
				t.Fatalf("tokens %v and labels %v of a batch come from different examples", toks, labels)
			}
			out = append(out, toks...)
		}
		return out
	}
	a, b, c := seen(1), seen(1), seen(2)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different batches: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 give the same order %v", a)
	}
	for e := range 2 {
		epoch := slices.Clone(a[e*n : (e+1)*n])
		slices.Sort(epoch)
		if !slices.Equal(epoch, data) {
			t.Errorf("epoch %d visits %v, want every example once", e, a[e*n:(e+1)*n])
		}
	}
	if slices.Equal(a[:n], a[n:]) {
		t.Error("both epochs have the same order")
	}
	ev, _ := mem.EvalBatches(4)
	if len(ev) != 3 || ev[2].Tokens.Shape().Dimensions[0] != 2 {
		t.Errorf("10 eval examples in batches of 4: got %d batches", len(ev))
	}
	if _, err := NewMemory(Batch{Tokens: all.Tokens}, Batch{}); err == nil {
		t.Error("examples without targets accepted")
	}
}

func TestRecordSaveLoad(t *testing.T) {
	m := mustPeft(t, tiny, peft.Adapter{Name: "ada", Method: adalink.Config{Rank: 2}})
	tr, err := New(testBackend(t), newBase(t, tiny, 1), tiny, m, Config{Steps: 3, BatchSize: 8, LR: 1e-3, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	var steps, evals int
	tr.OnStep = func(StepPoint) { steps++ }
	tr.OnEval = func(EvalPoint) { evals++ }
	rec, err := tr.Run(majoritySource(t))
	if err != nil {
		t.Fatal(err)
	}
	if steps != 3 || evals != 2 {
		t.Errorf("callbacks saw %d steps and %d evaluations, want 3 and 2", steps, evals)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "run.json")
	if err := rec.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Config != rec.Config || got.Model != rec.Model || !slices.Equal(got.Losses(), rec.Losses()) ||
		len(got.Evals) != 2 || got.Versions.GoMLX != "v0.28.2" || got.Backend != backend.Describe() ||
		len(got.Adapters) != 1 || got.Adapters[0].Type != "ADALINK" || got.TrainableParams != 2*2*tiny.Width ||
		got.PlannedTrainable != got.TrainableParams || got.Finished.IsZero() {
		t.Errorf("record did not round-trip:\n%+v\n%+v", got, rec)
	}
	var method adalink.Config
	if err := json.Unmarshal(got.Adapters[0].Method, &method); err != nil || method.Rank != 2 {
		t.Errorf("adapter config in the record: %s (%v)", got.Adapters[0].Method, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files after Save, want only run.json", len(entries))
	}
	if _, err := LoadRecord(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("loading a missing record succeeded")
	}
}

// TestTextAndImages trains a multimodal classifier one step, with both inputs.
func TestTextAndImages(t *testing.T) {
	c := model.Config{Name: "tiny-mm", Vocab: 16, Width: 8, Heads: 2, Blocks: 1, MLPDim: 16, MaxLen: 4,
		ImageSize: 4, PatchSize: 2, Channels: 3, Classes: 3}
	img := make([]float32, 2*4*4*3)
	for i := range img {
		img[i] = float32(i%7) / 7
	}
	b := Batch{Tokens: tensors.FromValue([][]int32{{1, 2, 3, 0}, {4, 5, 0, 0}}), Images: tensors.FromFlatDataAndDimensions(img, 2, 4, 4, 3),
		Labels: tensors.FromValue([]int32{0, 2})}
	m := mustPeft(t, c, peft.Adapter{Name: "a", Method: adalink.Config{Rank: 2}})
	tr, err := New(testBackend(t), mlmodel.NewStore().RootScope(), c, m, Config{Steps: 2, BatchSize: 2, LR: 1e-2})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := tr.Step(b); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := tr.Record().TrainableParams, 2*2*2*c.Width; got != want {
		t.Errorf("%d trainable scalars, want %d (AdaLink r=2 on two modalities)", got, want)
	}
}

// TestCheckpoint trains with a checkpoint directory, then loads the saved
// adapter onto a fresh copy of the base: its weights are the trained ones.
func TestCheckpoint(t *testing.T) {
	dir := t.TempDir()
	sc := newBase(t, tiny, 1)
	m := mustPeft(t, tiny, peft.Adapter{Name: "ada", Method: adalink.Config{Rank: 2}},
		peft.Adapter{Name: "old", Method: lora.Config{Rank: 2}, Frozen: true})
	tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 6, BatchSize: 8, LR: 1e-2, EvalEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	tr.CheckpointDir = dir
	if _, err := tr.Run(majoritySource(t)); err != nil {
		t.Fatal(err)
	}
	trained := snapshot(sc)
	if _, err := os.Stat(filepath.Join(dir, "old")); err == nil {
		t.Error("the frozen adapter was checkpointed")
	}
	fresh := newBase(t, tiny, 1)
	a, err := peft.LoadAdapter(filepath.Join(dir, "ada"), fresh, tiny.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "ada" || a.Method.Type() != "ADALINK" {
		t.Errorf("loaded %q (%s)", a.Name, a.Method.Type())
	}
	n := 0
	for name, v := range snapshot(fresh) {
		if strings.HasPrefix(name, "/adapters/ada/") {
			n++
			if !bitsEqual(v, trained[name]) {
				t.Errorf("checkpointed %s differs from the trained one", name)
			}
		}
	}
	if n != 2 {
		t.Errorf("loaded %d AdaLink weights, want 2 (A and B)", n)
	}
	rec, err := LoadRecord(filepath.Join(dir, RecordFile))
	if err != nil || len(rec.Steps) != 6 {
		t.Errorf("checkpointed record: %v, %v", rec, err)
	}
	// Without adapters there is nothing to checkpoint.
	plain, _ := New(testBackend(t), newBase(t, tiny, 1), tiny, nil, Config{Steps: 1, BatchSize: 1, LR: 1e-3})
	if err := plain.Checkpoint(t.TempDir()); err == nil {
		t.Error("checkpoint without adapters succeeded")
	}
}
