package model

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
)

// Gelu is the exact GELU, x·Φ(x) with Φ the standard normal CDF, as PyTorch's
// nn.GELU() computes it. Its value is the backend's fused exact GELU
// (or x·Φ(x) with Erf where the backend has no fused op), the same numbers
// GoMLX's activation.Gelu gives. Only its gradient is peftlab's own:
//
// GoMLX differentiates its fused GELU through the decomposed formula, which on
// the pure-Go backend means computing Erf again in float64, one scalar at a
// time, and Exp for Erf's derivative: about a quarter of a small LM's training
// step (bench/NOTES.md). Here the slope Φ(x) + x·φ(x) is computed once, in
// the backward pass only, in float32 with Abramowitz & Stegun's erf
// approximation 7.1.26 (absolute error below 1.5e-7, the size of a float32
// rounding step) sharing one Exp with φ(x). A test compares it with the exact
// derivative. Graphs that are not training get activation.Gelu's form, whose
// gradient is GoMLX's.
func Gelu(x *Node) *Node {
	fused := func() *Node { return BackendFusedGelu(x, true) }
	exact := func() *Node { return Mul(x, MulScalar(OnePlus(Erf(MulScalar(x, 1/math.Sqrt2))), 0.5)) }
	if !mayDifferentiate(x.Graph()) {
		out, _ := InternalFusedOpCaller(fused, exact, true) // GoMLX's own gradient, should anyone ask.
		return out
	}
	y, _ := InternalFusedOpCaller(fused, exact, false)
	return withGradient(y, x, func(v *Node) *Node { return Mul(v, geluSlope(x)) })
}

// withGradient returns value, a function of x computed without a gradient
// path, as a node whose gradient with respect to x is vjp(v) for an incoming
// gradient v. It adds to value a zero that carries the gradient, x - sg(x)
// (sg = StopGradient), so its value is value exactly, at the cost of two
// element-wise ops; vjp's nodes are built by the backward pass only.
func withGradient(value, x *Node, vjp func(v *Node) *Node) *Node {
	carrier := IdentityWithCustomGradient(Sub(x, StopGradient(x)), func(_, v *Node) *Node { return vjp(v) })
	return Add(StopGradient(value), carrier)
}

// geluSlope returns dGELU/dx = Φ(x) + x·φ(x), with Φ from erf 7.1.26:
// erf(z) ≈ 1 - t·(a1 + t·(a2 + t·(a3 + t·(a4 + t·a5))))·exp(-z²), t = 1/(1+p·z)
// for z = |x|/√2 ≥ 0, and exp(-z²) = exp(-x²/2) shared with φ.
func geluSlope(x *Node) *Node {
	const (
		p  = 0.3275911
		a1 = 0.254829592
		a2 = -0.284496736
		a3 = 1.421413741
		a4 = -1.453152027
		a5 = 1.061405429
	)
	z := MulScalar(Abs(x), 1/math.Sqrt2)
	e := Exp(MulScalar(Square(x), -0.5)) // exp(-x²/2) = exp(-z²)
	t := Inverse(OnePlus(MulScalar(z, p)))
	poly := AddScalar(MulScalar(t, a5), a4)
	for _, a := range []float64{a3, a2, a1} {
		poly = AddScalar(Mul(poly, t), a)
	}
	erfAbs := OneMinus(Mul(Mul(poly, t), e))             // erf(|x|/√2)
	cdf := MulScalar(OnePlus(Mul(Sign(x), erfAbs)), 0.5) // Φ(x)
	pdf := MulScalar(e, 1/math.Sqrt(2*math.Pi))          // φ(x)
	return Add(cdf, Mul(x, pdf))
}
