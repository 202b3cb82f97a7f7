package model

import (
	"math"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
)

// Gelu is the GELU activation x·Φ(x), Φ the standard normal CDF, as
// PyTorch's nn.GELU() computes it (the erf form, not the tanh one), to
// within 4e-7·max(1, |x|) (TestGelu; float32 rounding of the 16th power
// below adds to the approximation's own error).
//
// Φ(x) = (1 + erf(x/√2))/2 with erf from Abramowitz & Stegun 7.1.28,
//
//	erf(z) ≈ 1 - (1 + a1·z + a2·z² + ... + a6·z⁶)^-16,  z ≥ 0,  |error| ≤ 3e-7,
//
// built from multiplies and adds only, and differentiated by GoMLX like any
// other graph. Why not the backend's fused exact GELU (activation.Gelu)?
// The Go backend computes it with math.Erf, which calls math.Exp, and in a
// binary built with GOEXPERIMENT=simd math.Exp runs 100x slower on the Intel
// machines here (1.2 µs instead of 12 ns a call: its assembly mixes VEX and
// legacy SSE instructions); GoMLX also differentiates the fused op through
// its decomposed form, Erf and Exp again. With the polynomial a training
// step of the text base's shape is about 2x faster (bench/NOTES.md).
func Gelu(x *Node) *Node {
	a := [...]float64{0.0705230784, 0.0422820123, 0.0092705272, 0.0001520143, 0.0002765672, 0.0000430638}
	z := MulScalar(Abs(x), 1/math.Sqrt2)
	p := MulScalar(z, a[5])
	for i := 4; i >= 0; i-- {
		p = Mul(AddScalar(p, a[i]), z)
	}
	p = OnePlus(p)
	for range 4 {
		p = Square(p) // p^16
	}
	erfAbs := OneMinus(Inverse(p)) // erf(|x|/√2)
	return Mul(x, MulScalar(OnePlus(Mul(Sign(x), erfAbs)), 0.5))
}
