package backend

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// GoMLX v0.26 differentiated matrix products by broadcast-multiply-reduce
// (slow) and Slice through Pad (missing in its Go backend), and peftlab
// carried replacements for both. v0.28's own gradients are matrix products
// and the Go backend has Pad, so the replacements are gone; this test keeps
// upstream honest on the products and slices a transformer uses, against
// central finite differences in float64.

// randTensor returns a float64 tensor with entries in [-1, 1).
func randTensor(r *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	data := make([]float64, n)
	for i := range data {
		data[i] = 2*r.Float64() - 1
	}
	return tensors.FromFlatDataAndDimensions(data, dims...)
}

func TestUpstreamGradientsMatchFiniteDifferences(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name         string
		xDims, yDims []int
		f            func(x, y *Node) *Node
	}{
		{"matmul", []int{3, 4}, []int{4, 5}, func(x, y *Node) *Node { return Dot(x, y).Product() }},
		{"dense on a sequence", []int{2, 3, 4}, []int{4, 5}, MatMul},
		{"attention logits", []int{2, 3, 2, 4}, []int{2, 5, 2, 4}, func(x, y *Node) *Node { return Einsum("bqhd,bkhd->bhqk", x, y) }},
		{"odd axes", []int{3, 2, 4}, []int{4, 3, 5}, func(x, y *Node) *Node { return DotGeneral(x, []int{2}, []int{0}, y, []int{0}, []int{1}) }},
		{"logits by head", []int{2, 3, 4, 2}, []int{2, 3, 2, 5}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{3}, []int{0, 1}, y, []int{2}, []int{0, 1})
		}},
		{"logits transposed", []int{2, 3, 4, 2}, []int{2, 3, 5, 2}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{3}, []int{0, 1}, y, []int{3}, []int{0, 1})
		}},
		{"weights times values", []int{2, 3, 4, 5}, []int{2, 3, 5, 2}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{3}, []int{0, 1}, y, []int{2}, []int{0, 1})
		}},
		{"contracting axis in the middle", []int{2, 4, 3, 5}, []int{2, 4, 6}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{1}, []int{0}, y, []int{1}, []int{0})
		}},
		{"rhs with two cross axes", []int{2, 3, 4}, []int{2, 5, 4, 6}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{2}, []int{0}, y, []int{2}, []int{0})
		}},
		{"rhs with two adjacent cross axes", []int{2, 3, 4}, []int{2, 4, 5, 3}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{2}, []int{0}, y, []int{1}, []int{0})
		}},
		{"lhs contracting first, two cross axes", []int{4, 2, 3}, []int{4, 5}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{0}, nil, y, []int{0}, nil)
		}},
		{"weight gradient", []int{5, 4}, []int{5, 3}, func(x, y *Node) *Node { return DotGeneral(x, []int{0}, nil, y, []int{0}, nil) }},
		{"slice of a product", []int{4, 6}, []int{6, 3}, func(x, y *Node) *Node {
			return Slice(Dot(x, y).Product(), AxisRange(1, 3), AxisRange(0, 2))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, y := randTensor(r, c.xDims...), randTensor(r, c.yDims...)
			var outDims []int
			probe := MustExecOnce(b, func(x, y *Node) *Node { return c.f(x, y) }, x, y)
			outDims = probe.Shape().Dimensions
			w := randTensor(r, outDims...)
			loss := func(x, y *Node, w *Node) *Node { return ReduceAllSum(Mul(c.f(x, y), w)) }
			grads := MustExecOnceN(b, func(x, y, w *Node) (*Node, *Node) {
				g := Gradient(loss(x, y, w), x, y)
				return g[0], g[1]
			}, x, y, w)
			value := func(x, y *tensors.Tensor) float64 {
				return tensors.ToScalar[float64](MustExecOnce(b, loss, x, y, w))
			}
			for arg, in := range []*tensors.Tensor{x, y} {
				got := tensors.MustCopyFlatData[float64](grads[arg])
				flat := tensors.MustCopyFlatData[float64](in)
				for i := range flat {
					const h = 1e-6
					plus, minus := append([]float64{}, flat...), append([]float64{}, flat...)
					plus[i] += h
					minus[i] -= h
					pt := tensors.FromFlatDataAndDimensions(plus, in.Shape().Dimensions...)
					mt := tensors.FromFlatDataAndDimensions(minus, in.Shape().Dimensions...)
					var want float64
					if arg == 0 {
						want = (value(pt, y) - value(mt, y)) / (2 * h)
					} else {
						want = (value(x, pt) - value(x, mt)) / (2 * h)
					}
					if d := math.Abs(got[i] - want); d > 1e-7*(1+math.Abs(want)) {
						t.Fatalf("d/d%s[%d] = %.12g, finite differences %.12g", "xy"[arg:arg+1], i, got[i], want)
					}
				}
			}
		})
	}
}

// TestGradientProductsNonTransposed checks that the gradients of a Dense
// layer and of attention's two products are products in the backend's
// non-transposed layout (lhs [batch, M, K], rhs [batch, K, N]), that no
// gradient ends in a transpose that moves nothing, and that the permutation
// reader tells real and identity transposes apart.
func TestGradientProductsNonTransposed(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(7, 8))
	cases := []struct {
		name         string
		xDims, yDims []int
		f            func(x, y *Node) *Node
	}{
		{"dense", []int{6, 4}, []int{4, 3}, func(x, w *Node) *Node { return Dot(x, w).Product() }},
		{"dense on a sequence", []int{2, 6, 4}, []int{4, 3}, MatMul}, // AdaLink's x·A on [B, S, d]
		{"logits", []int{2, 3, 5, 4}, []int{2, 3, 4, 5}, func(q, kT *Node) *Node {
			return DotGeneral(q, []int{3}, []int{0, 1}, kT, []int{2}, []int{0, 1})
		}},
		{"weights times values", []int{2, 3, 5, 5}, []int{2, 3, 5, 4}, func(w, v *Node) *Node {
			return DotGeneral(w, []int{3}, []int{0, 1}, v, []int{2}, []int{0, 1})
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var grads []*Node
			exec := MustNewExec(b, func(x, y *Node) (*Node, *Node) {
				grads = Gradient(ReduceAllSum(c.f(x, y)), x, y)
				return grads[0], grads[1]
			})
			if _, err := exec.Call(randTensor(r, c.xDims...), randTensor(r, c.yDims...)); err != nil {
				t.Fatal(err)
			}
			products := 0
			for _, g := range grads {
				if skipIdentityTranspose(g) != g {
					t.Errorf("gradient %s ends in a transpose that moves nothing", g)
				}
				for _, n := range reachable(g) {
					if n.Type() != NodeTypeDotGeneral {
						continue
					}
					products++
					p, ok := parseDotAxes(n)
					if !ok {
						t.Fatalf("cannot read the axes of %s", n)
					}
					lhs := n.Inputs()[0]
					nb := len(p.lhsBatch)
					if p.lhsContracting[0] != lhs.Rank()-1 || p.rhsContracting[0] != nb {
						t.Errorf("gradient product %s is not in the non-transposed layout", n)
					}
				}
			}
			if products != 2 {
				t.Errorf("found %d products in the two gradients, want 2", products)
			}
		})
	}
	var identity, real *Node
	exec2 := MustNewExec(b, func(x *Node) (*Node, *Node) {
		real, identity = TransposeAllAxes(x, 1, 0), TransposeAllAxes(x, 0, 1)
		return real, identity
	})
	if _, err := exec2.Call(randTensor(r, 3, 3)); err != nil {
		t.Fatal(err)
	}
	if skipIdentityTranspose(real) != real || skipIdentityTranspose(identity) == identity {
		t.Errorf("square transposes: the real one must be kept, the identity skipped")
	}
}

// reachable lists the nodes n is computed from, n included.
func reachable(n *Node) []*Node {
	seen := map[*Node]bool{}
	var out []*Node
	var walk func(*Node)
	walk = func(n *Node) {
		if seen[n] {
			return
		}
		seen[n] = true
		out = append(out, n)
		for _, in := range n.Inputs() {
			walk(in)
		}
	}
	walk(n)
	return out
}

// TestFusedSoftmaxGradient checks the fused softmax's registered gradient
// against GoMLX's decomposed softmax, over a middle and the last axis.
func TestFusedSoftmaxGradient(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	x, w := randTensor(r, 2, 5, 3), randTensor(r, 2, 5, 3)
	for _, axis := range []int{1, 2} {
		outs := MustExecOnceN(b, func(x, w *Node) (*Node, *Node) {
			fused := Gradient(ReduceAllSum(Mul(BackendFusedSoftmax(x, axis), w)), x)[0]
			e := Exp(Sub(x, ReduceAndKeep(x, ReduceMax, axis)))
			stock := Gradient(ReduceAllSum(Mul(Div(e, ReduceAndKeep(e, ReduceSum, axis)), w)), x)[0]
			return fused, stock
		}, x, w)
		got, want := tensors.MustCopyFlatData[float64](outs[0]), tensors.MustCopyFlatData[float64](outs[1])
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Fatalf("axis %d: gradient[%d] = %.15g, the formula's %.15g", axis, i, got[i], want[i])
			}
		}
	}
}
