package peft

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/peftlab/peftlab/pkg/site"
)

// fileTestLayout is a tiny base for the file tests: text input, one block
// with q and v, a classification head.
func fileTestLayout() site.Layout {
	return site.Layout{
		Model: "tiny-files", Width: 4, Vocab: 10, Blocks: 1,
		Sites: []site.Site{
			{Name: "input/text", Kind: site.Input, In: 4, Out: 4, Modality: "text"},
			{Name: "block/0/attn/q", Kind: site.Linear, In: 4, Out: 4},
			{Name: "block/0/attn/v", Kind: site.Linear, In: 4, Out: 4},
			{Name: "head/cls", Kind: site.Linear, In: 4, Out: 3},
		},
		Params: []site.Param{
			{Name: "/embed/text/embeddings", Shape: []int{10, 4}},
			{Name: "/block/0/attn/q/weights", Shape: []int{4, 4}},
			{Name: "/block/0/attn/q/biases", Shape: []int{4}},
			{Name: "/block/0/attn/v/weights", Shape: []int{4, 4}},
			{Name: "/block/0/attn/v/biases", Shape: []int{4}},
			{Name: "/block/0/ln1/gain", Shape: []int{4}},
			{Name: "/head/cls/weights", Shape: []int{4, 3}},
			{Name: "/head/cls/biases", Shape: []int{3}},
		},
	}
}

// setVar creates or overwrites the float32 variable at path with values.
func setVar(t testing.TB, sc *mlmodel.Scope, path string, shape []int, values []float32) {
	t.Helper()
	scope, name := mlmodel.SplitPath(path)
	value := tensors.FromFlatDataAndDimensions(values, shape...)
	if v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name)); v != nil {
		if err := v.SetValue(value); err != nil {
			t.Fatal(err)
		}
		return
	}
	sc.Store().Scope(scope).VariableWithValue(name, value)
}

// ramp returns n distinct values depending on seed.
func ramp(n int, seed float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = seed + float32(i)*0.01 - float32(i%3)*0.5
	}
	return out
}

// newBase returns a context holding every base weight of l, filled from seed,
// creating the variables in layout order or in reverse.
func newBase(t testing.TB, l site.Layout, seed float32, reverse bool) *mlmodel.Scope {
	sc := mlmodel.NewStore().RootScope()
	for i := range l.Params {
		if reverse {
			i = len(l.Params) - 1 - i
		}
		p := l.Params[i]
		setVar(t, sc, p.Name, p.Shape, ramp(p.Size(), seed+float32(i)))
	}
	return sc
}

func mustHash(t *testing.T, sc *mlmodel.Scope) string {
	t.Helper()
	h, err := BaseHash(sc)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBaseHash(t *testing.T) {
	l := fileTestLayout()
	ref := mustHash(t, newBase(t, l, 1, false))
	if !strings.HasPrefix(ref, "sha256:") || len(ref) != len("sha256:")+64 {
		t.Fatalf("hash %q is not sha256:<64 hex digits>", ref)
	}
	if got := mustHash(t, newBase(t, l, 1, true)); got != ref {
		t.Errorf("hash depends on creation order: %s vs %s", got, ref)
	}

	// Training state, adapters and GoMLX internals do not count.
	sc := newBase(t, l, 1, false)
	for _, path := range []string{
		"/adapters/task/block/0/attn/q/lora_A", "/AdamOptimizer/block/0/attn/q/weights_1st_moment",
		"/AdamOptimizer/global_step", "/optimizers/learning_rate", "/global_step", "/#rngState",
		"/metrics/loss/total", "/acc_grads/head/cls/weights", "/trainer/train_last_step",
	} {
		setVar(t, sc, path, []int{2}, []float32{1, 2})
	}
	if got := mustHash(t, sc); got != ref {
		t.Errorf("non-base variables changed the hash")
	}

	// One flipped bit, a renamed weight, a reshaped weight, an extra weight: all change it.
	changes := map[string]func(sc *mlmodel.Scope){
		"one bit": func(sc *mlmodel.Scope) {
			v := sc.Store().GetVariable(mlmodel.JoinPath("/block/0/ln1", "gain"))
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			vals[2] = math.Float32frombits(math.Float32bits(vals[2]) ^ 1)
			setVar(t, sc, "/block/0/ln1/gain", []int{4}, vals)
		},
		"reshape": func(sc *mlmodel.Scope) {
			v := sc.Store().GetVariable(mlmodel.JoinPath("/block/0/attn/q", "weights"))
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			_ = v.SetValue(tensors.FromFlatDataAndDimensions(vals, 2, 8))
		},
		"rename": func(sc *mlmodel.Scope) {
			v := sc.Store().GetVariable(mlmodel.JoinPath("/head/cls", "biases"))
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			_ = sc.Store().DeleteVariable(mlmodel.JoinPath("/head/cls", "biases"))
			setVar(t, sc, "/head/cls/bias", []int{3}, vals)
		},
		"extra": func(sc *mlmodel.Scope) { setVar(t, sc, "/probe/w", []int{1}, []float32{0}) },
	}
	for what, change := range changes {
		sc := newBase(t, l, 1, false)
		change(sc)
		if got := mustHash(t, sc); got == ref {
			t.Errorf("%s: hash unchanged", what)
		}
	}

	if _, err := BaseHash(mlmodel.NewStore().RootScope()); err == nil || !strings.Contains(err.Error(), "no base-model weights") {
		t.Errorf("empty context: err = %v", err)
	}
	sc = newBase(t, l, 1, false)
	sc.Store().Scope("/late").VariableWithShape("w", tensors.FromValue([]float32{1}).Shape())
	if _, err := BaseHash(sc); err == nil || !strings.Contains(err.Error(), "/late/w has no value") {
		t.Errorf("uninitialized weight: err = %v", err)
	}
}

// TestBaseHashLazyCheckpoint: a base loaded lazily from a GoMLX checkpoint
// hashes the same before any variable is materialized.
func TestBaseHashLazyCheckpoint(t *testing.T) {
	l := fileTestLayout()
	dir := t.TempDir()
	sc := newBase(t, l, 3, false)
	sc.VariableWithValue("global_step", int64(7)) // saved with the checkpoint, not hashed
	ref := mustHash(t, sc)
	h, err := checkpoint.Build(sc.Store()).Dir(dir).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}

	lazy := mlmodel.NewStore().RootScope()
	if _, err := checkpoint.Build(lazy.Store()).Dir(dir).Done(); err != nil {
		t.Fatal(err)
	}
	if n := lazy.NumVariables(); n != 0 {
		t.Fatalf("checkpoint loaded %d variables eagerly; this test needs lazy loading", n)
	}
	if got := mustHash(t, lazy); got != ref {
		t.Errorf("lazily loaded base hashes to %s, want %s", got, ref)
	}
	_ = lazy.Store().GetVariable(mlmodel.JoinPath("/head/cls", "weights")) // materialize one
	if got := mustHash(t, lazy); got != ref {
		t.Errorf("partly materialized base hashes to %s, want %s", got, ref)
	}
}
