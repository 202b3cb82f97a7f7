package model

import (
	"math"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/gomlx/gomlx/ml/layers/activation"
)

// TestGelu checks that Gelu's value is GoMLX's exact GELU bit for bit and
// that its gradient is the exact derivative Φ(x) + x·φ(x) to float32
// precision, on a grid that covers both tails and zero.
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
		if ours[i] != theirs[i] {
			t.Fatalf("Gelu(%g) = %g, activation.Gelu gives %g", x, ours[i], theirs[i])
		}
		xf := float64(x)
		want := 0.5*(1+math.Erf(xf/math.Sqrt2)) + xf*math.Exp(-xf*xf/2)/math.Sqrt(2*math.Pi)
		if d := math.Abs(float64(grad[i]) - want); d > 5e-7 {
			t.Errorf("dGelu/dx at %g = %.9g, exact %.9g (diff %.3g)", x, grad[i], want, d)
		}
	}
}
