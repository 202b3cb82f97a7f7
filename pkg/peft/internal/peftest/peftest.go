// Package peftest holds what the method packages' tests share: a backend,
// tiny base models, a fixed batch, and a forward pass through a hook.
package peftest

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// Backend returns the test binary's shared backend (fast gradients installed).
func Backend(t testing.TB) compute.Backend { return backendtest.Backend(t) }

// MM is a tiny multimodal base (text and images), Text a tiny text-only one.
var (
	MM = model.Config{Name: "tiny-mm", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12,
		ImageSize: 4, PatchSize: 2, Channels: 3, Classes: 3}
	Text = model.Config{Name: "tiny-text", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12, Classes: 3}
)

// NewCtx returns a fresh context with a fixed RNG seed.
func NewCtx(t testing.TB) *mlmodel.Scope {
	t.Helper()
	scope := mlmodel.NewStore().RootScope()
	if err := scope.Store().SetRNGStateFromSeed(7); err != nil {
		t.Fatal(err)
	}
	return scope
}

// Batch returns 2 right-padded token rows of length 5 and 2 random images.
func Batch(c model.Config) (tokens, images *tensors.Tensor) {
	tokens = tensors.FromValue([][]int32{{3, 7, 1, 12, 5}, {4, 2, 9, 0, 0}})
	r := rand.New(rand.NewPCG(1, 2))
	img := make([]float32, 2*c.ImageSize*c.ImageSize*c.Channels)
	for i := range img {
		img[i] = r.Float32()
	}
	images = tensors.FromFlatDataAndDimensions(img, 2, c.ImageSize, c.ImageSize, c.Channels)
	return
}

// Run builds fn on the batch of c (tokens, and images when c has them) in a
// fresh executor on ctx and returns its outputs. When hook is a *peft.Model it
// applies its trainability after the build, as the trainer does.
func Run(t testing.TB, scope *mlmodel.Scope, c model.Config, hook site.Hook,
	fn func(scope *mlmodel.Scope, in model.Inputs) []*graph.Node) []*tensors.Tensor {
	t.Helper()
	tokens, images := Batch(c)
	build := func(scope *mlmodel.Scope, in model.Inputs) []*graph.Node {
		out := fn(scope, in)
		if m, ok := hook.(interface{ ApplyTrainable(*mlmodel.Scope) }); ok {
			m.ApplyTrainable(scope)
		}
		return out
	}
	var (
		exec *mlmodel.Exec
		err  error
		args = []any{tokens}
	)
	if c.HasImage() {
		args = append(args, images)
		exec, err = mlmodel.NewExec(Backend(t), scope.Store(), func(scope *mlmodel.Scope, tok, img *graph.Node) []*graph.Node {
			return build(scope, model.Inputs{Tokens: tok, Images: img})
		})
	} else {
		exec, err = mlmodel.NewExec(Backend(t), scope.Store(), func(scope *mlmodel.Scope, tok *graph.Node) []*graph.Node {
			return build(scope, model.Inputs{Tokens: tok})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	outs, err := exec.Exec(args...)
	if err != nil {
		t.Fatal(err)
	}
	return outs
}

// Forward runs Classify and LMLogits of base c with hook on ctx and returns
// their values, flat.
func Forward(t testing.TB, scope *mlmodel.Scope, c model.Config, hook site.Hook) (cls, lm []float32) {
	t.Helper()
	outs := Run(t, scope, c, hook, func(scope *mlmodel.Scope, in model.Inputs) []*graph.Node {
		return []*graph.Node{model.Classify(scope, c, hook, in), model.LMLogits(scope, c, hook, in)}
	})
	return Flat(t, outs[0]), Flat(t, outs[1])
}

// Flat returns the values of a Float32 tensor.
func Flat(t testing.TB, x *tensors.Tensor) []float32 {
	t.Helper()
	v, err := tensors.CopyFlatData[float32](x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// MaxDiff returns max |a_i - b_i|, or 1e300 on a length mismatch or a NaN.
func MaxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e300
	}
	m := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		if d != d {
			return 1e300
		}
		if d > m {
			m = d
		}
	}
	return m
}
