package peft

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
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
func setVar(t testing.TB, ctx *context.Context, path string, shape []int, values []float32) {
	t.Helper()
	scope, name := context.SplitScope(path)
	value := tensors.FromFlatDataAndDimensions(values, shape...)
	if v := ctx.GetVariableByScopeAndName(scope, name); v != nil {
		if err := v.SetValue(value); err != nil {
			t.Fatal(err)
		}
		return
	}
	ctx.InAbsPath(scope).Checked(false).VariableWithValue(name, value)
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
func newBase(t testing.TB, l site.Layout, seed float32, reverse bool) *context.Context {
	ctx := context.New()
	for i := range l.Params {
		if reverse {
			i = len(l.Params) - 1 - i
		}
		p := l.Params[i]
		setVar(t, ctx, p.Name, p.Shape, ramp(p.Size(), seed+float32(i)))
	}
	return ctx
}

func mustHash(t *testing.T, ctx *context.Context) string {
	t.Helper()
	h, err := BaseHash(ctx)
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
	ctx := newBase(t, l, 1, false)
	for _, path := range []string{
		"/adapters/task/block/0/attn/q/lora_A", "/AdamOptimizer/block/0/attn/q/weights_1st_moment",
		"/AdamOptimizer/global_step", "/optimizers/learning_rate", "/global_step", "/#rngState",
		"/metrics/loss/total", "/acc_grads/head/cls/weights", "/trainer/train_last_step",
	} {
		setVar(t, ctx, path, []int{2}, []float32{1, 2})
	}
	if got := mustHash(t, ctx); got != ref {
		t.Errorf("non-base variables changed the hash")
	}

	// One flipped bit, a renamed weight, a reshaped weight, an extra weight: all change it.
	changes := map[string]func(ctx *context.Context){
		"one bit": func(ctx *context.Context) {
			v := ctx.GetVariableByScopeAndName("/block/0/ln1", "gain")
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			vals[2] = math.Float32frombits(math.Float32bits(vals[2]) ^ 1)
			setVar(t, ctx, "/block/0/ln1/gain", []int{4}, vals)
		},
		"reshape": func(ctx *context.Context) {
			v := ctx.GetVariableByScopeAndName("/block/0/attn/q", "weights")
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			_ = v.SetValue(tensors.FromFlatDataAndDimensions(vals, 2, 8))
		},
		"rename": func(ctx *context.Context) {
			v := ctx.GetVariableByScopeAndName("/head/cls", "biases")
			vals := tensors.MustCopyFlatData[float32](v.MustValue())
			_ = ctx.DeleteVariable("/head/cls", "biases")
			setVar(t, ctx, "/head/cls/bias", []int{3}, vals)
		},
		"extra": func(ctx *context.Context) { setVar(t, ctx, "/probe/w", []int{1}, []float32{0}) },
	}
	for what, change := range changes {
		ctx := newBase(t, l, 1, false)
		change(ctx)
		if got := mustHash(t, ctx); got == ref {
			t.Errorf("%s: hash unchanged", what)
		}
	}

	if _, err := BaseHash(context.New()); err == nil || !strings.Contains(err.Error(), "no base-model weights") {
		t.Errorf("empty context: err = %v", err)
	}
	ctx = newBase(t, l, 1, false)
	ctx.InAbsPath("/late").Checked(false).VariableWithShape("w", tensors.FromValue([]float32{1}).Shape())
	if _, err := BaseHash(ctx); err == nil || !strings.Contains(err.Error(), "/late/w has no value") {
		t.Errorf("uninitialized weight: err = %v", err)
	}
}

// TestBaseHashLazyCheckpoint: a base loaded lazily from a GoMLX checkpoint
// hashes the same before any variable is materialized.
func TestBaseHashLazyCheckpoint(t *testing.T) {
	l := fileTestLayout()
	dir := t.TempDir()
	ctx := newBase(t, l, 3, false)
	ctx.Checked(false).VariableWithValue("global_step", int64(7)) // saved with the checkpoint, not hashed
	ref := mustHash(t, ctx)
	h, err := checkpoints.Build(ctx).Dir(dir).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}

	lazy := context.New()
	if _, err := checkpoints.Build(lazy).Dir(dir).Done(); err != nil {
		t.Fatal(err)
	}
	if n := lazy.NumVariables(); n != 0 {
		t.Fatalf("checkpoint loaded %d variables eagerly; this test needs lazy loading", n)
	}
	if got := mustHash(t, lazy); got != ref {
		t.Errorf("lazily loaded base hashes to %s, want %s", got, ref)
	}
	_ = lazy.GetVariableByScopeAndName("/head/cls", "weights") // materialize one
	if got := mustHash(t, lazy); got != ref {
		t.Errorf("partly materialized base hashes to %s, want %s", got, ref)
	}
}
