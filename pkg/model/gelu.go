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
// built from multiplies and adds only. Why not the backend's fused exact GELU
// (activation.Gelu)? The Go backend computes it with math.Erf, which calls
// math.Exp, and in a binary built with GOEXPERIMENT=simd math.Exp runs 100x
// slower on the Intel machines here (1.2 µs instead of 12 ns a call: its
// assembly mixes VEX and legacy SSE instructions); GoMLX also differentiates
// the fused op through its decomposed form, Erf and Exp again. With the
// polynomial a training step of the text base's shape is about 2x faster
// (bench/NOTES.md).
//
// The backward pass is the polynomial's own derivative, written out rather
// than left to GoMLX, which would differentiate each of the ~25 element-wise
// operations above (~50 more passes over the MLP's widest activation):
//
//	d/dx x·Φ(x) = Φ(x) + x·Φ'(x),  Φ'(x) = (8/√2)·p'(z)/p(z)^17,
//
// with p(z) = 1 + a1·z + ... + a6·z⁶ and z = |x|/√2 (sixteen passes; the
// gradient carrier adds two, see withGradient).
func Gelu(x *Node) *Node {
	if stockOps {
		return gelu(x).y
	}
	// No StopGradient on x: withGradient stops the gradient at g.y already, and on the Go
	// backend a StopGradient of a tensor with other consumers is a copy.
	g := gelu(x)
	return withGradient(g.y, x, func(v *Node) *Node {
		a := geluA
		dp := MulScalar(g.z, 6*a[5]) // p'(z) by Horner's rule
		for i := 4; i >= 1; i-- {
			dp = Mul(AddScalar(dp, float64(i+1)*a[i]), g.z)
		}
		dp = AddScalar(dp, a[0])
		dPhi := MulScalar(Div(dp, Mul(g.p16, g.p)), 8/math.Sqrt2)
		return Mul(v, Add(g.phi, Mul(x, dPhi)))
	})
}

// geluA are the coefficients a1..a6 of Abramowitz & Stegun 7.1.28.
var geluA = [...]float64{0.0705230784, 0.0422820123, 0.0092705272, 0.0001520143, 0.0002765672, 0.0000430638}

// geluParts are GELU's value and the intermediates its derivative reuses.
type geluParts struct {
	y, phi *Node // x·Φ(x) and Φ(x)
	z      *Node // |x|/√2
	p, p16 *Node // p(z) and p(z)^16
}

// gelu computes x·Φ(x) with erf from A&S 7.1.28.
func gelu(x *Node) geluParts {
	a := geluA
	z := MulScalar(Abs(x), 1/math.Sqrt2)
	p := MulScalar(z, a[5])
	for i := 4; i >= 0; i-- {
		p = Mul(AddScalar(p, a[i]), z)
	}
	p = OnePlus(p)
	p16 := p
	for range 4 {
		p16 = Square(p16)
	}
	erfAbs := OneMinus(Inverse(p16)) // erf(|x|/√2)
	phi := MulScalar(OnePlus(Mul(Sign(x), erfAbs)), 0.5)
	return geluParts{y: Mul(x, phi), phi: phi, z: z, p: p, p16: p16}
}
