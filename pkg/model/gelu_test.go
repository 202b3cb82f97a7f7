package model

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/activation"
)

// TestGelu checks Gelu's value against the exact x·Φ(x) (math.Erf in
// float64) and GoMLX's fused exact GELU, and its gradient against the exact
// derivative Φ(x) + x·φ(x), on a grid that covers both tails and zero.
func TestGelu(t *testing.T) {
	b := newBackend(t)
	var xs []float32
	for x := -9.0; x <= 9.0; x += 0.01 {
		xs = append(xs, float32(x))
	}
	xs = append(xs, 0, -0.0, 1e-6, -1e-6, 30, -30)
	outs := MustExecOnceN(b, func(x *Node) (*Node, *Node, *Node) {
		y := Gelu(x)
		return y, activation.Gelu(x), Gradient(ReduceAllSum(y), x)[0]
	}, xs)
	ours, theirs := tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
	grad := tensors.MustCopyFlatData[float32](outs[2])
	for i, x := range xs {
		xf := float64(x)
		exact := xf * 0.5 * (1 + math.Erf(xf/math.Sqrt2))
		if d := math.Abs(float64(ours[i]) - exact); d > 4e-7*math.Max(1, math.Abs(xf))+2.5e-7*math.Abs(exact) {
			t.Errorf("Gelu(%g) = %.9g, exact %.9g (diff %.3g)", x, ours[i], exact, d)
		}
		if d := math.Abs(float64(ours[i] - theirs[i])); d > 1e-6*math.Max(1, math.Abs(xf)) {
			t.Errorf("Gelu(%g) = %.9g, activation.Gelu gives %.9g", x, ours[i], theirs[i])
		}
		want := 0.5*(1+math.Erf(xf/math.Sqrt2)) + xf*math.Exp(-xf*xf/2)/math.Sqrt(2*math.Pi)
		if d := math.Abs(float64(grad[i]) - want); d > 1.5e-6 {
			t.Errorf("dGelu/dx at %g = %.9g, exact %.9g (diff %.3g)", x, grad[i], want, d)
		}
	}
}
