package backend

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

func testBackend(t testing.TB) backends.Backend {
	t.Helper()
	t.Setenv(EnvVar, "")
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

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

// productGrads returns d/dx and d/dy of sum(w ⊙ f(x, y)), with peftlab's
// gradients (fast) or GoMLX's stock ones.
func productGrads(t *testing.T, b backends.Backend, fast bool, f func(x, y *Node) *Node,
	x, y, w *tensors.Tensor) (gx, gy []float64) {
	t.Helper()
	SetFastGradients(fast)
	defer SetFastGradients(true)
	outs := MustExecOnceN(b, func(x, y, w *Node) (*Node, *Node) {
		loss := ReduceAllSum(Mul(f(x, y), w))
		g := Gradient(loss, x, y)
		return g[0], g[1]
	}, x, y, w)
	return tensors.MustCopyFlatData[float64](outs[0]), tensors.MustCopyFlatData[float64](outs[1])
}

func assertClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(got[i] - want[i]); d > 1e-12*(1+math.Abs(want[i])) {
			t.Fatalf("%s[%d] = %.15g, want %.15g (diff %g)", what, i, got[i], want[i], d)
		}
	}
}

// TestProductGradientsMatchStock compares peftlab's Dot/DotGeneral gradients
// with GoMLX's stock ones in float64, on the products a transformer uses and
// on unusual axis layouts.
func TestProductGradientsMatchStock(t *testing.T) {
	b := testBackend(t)
	r := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name       string
		xDims      []int
		yDims      []int
		f          func(x, y *Node) *Node
		wantOutDim []int
	}{
		{"Dot matrix-matrix", []int{3, 4}, []int{4, 5}, Dot, []int{3, 5}},
		{"Dot matrix-vector", []int{3, 4}, []int{4}, Dot, []int{3}},
		{"Dot vector-vector", []int{4}, []int{4}, Dot, nil},
		{"MatMul rank3 x matrix (Dense on a sequence)", []int{2, 3, 4}, []int{4, 5}, MatMul, []int{2, 3, 5}},
		{"batched matmul", []int{2, 3, 4}, []int{2, 4, 5}, func(x, y *Node) *Node { return Einsum("bij,bjk->bik", x, y) }, []int{2, 3, 5}},
		{"attention QK^T", []int{2, 2, 3, 4}, []int{2, 2, 5, 4}, func(q, k *Node) *Node { return Einsum("bhtd,bhsd->bhts", q, k) }, []int{2, 2, 3, 5}},
		{"attention AV", []int{2, 2, 3, 5}, []int{2, 2, 5, 4}, func(a, v *Node) *Node { return Einsum("bhts,bhsd->bhtd", a, v) }, []int{2, 2, 3, 4}},
		{"batch axes not leading", []int{4, 2, 3}, []int{3, 5, 2}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{2}, []int{1}, y, []int{0}, []int{2})
		}, []int{2, 4, 5}},
		{"two contracting axes paired out of order", []int{2, 3, 4, 5}, []int{5, 6, 3}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{1, 3}, nil, y, []int{2, 0}, nil)
		}, []int{2, 4, 6}},
		{"two batch axes, out of order", []int{2, 3, 4, 5}, []int{5, 2, 4, 6}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{2}, []int{3, 0}, y, []int{2}, []int{0, 1})
		}, []int{5, 2, 3, 6}},
		{"outer product (nothing contracted)", []int{3}, []int{4}, func(x, y *Node) *Node {
			return DotGeneral(x, nil, nil, y, nil, nil)
		}, []int{3, 4}},
		{"batch only", []int{2, 3}, []int{2, 3}, func(x, y *Node) *Node {
			return DotGeneral(x, []int{1}, []int{0}, y, []int{1}, []int{0})
		}, []int{2}},
		{"same operand twice (x·xᵀ)", []int{3, 4}, []int{1}, func(x, y *Node) *Node {
			return Mul(Einsum("ij,kj->ik", x, x), ReduceAllSum(y))
		}, []int{3, 3}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			x, y := randTensor(r, c.xDims...), randTensor(r, c.yDims...)
			w := randTensor(r, c.wantOutDim...)
			before := fallbacks.Load()
			fx, fy := productGrads(t, b, true, c.f, x, y, w)
			if n := fallbacks.Load() - before; n != 0 {
				t.Fatalf("%d gradient(s) fell back to the stock version", n)
			}
			sx, sy := productGrads(t, b, false, c.f, x, y, w)
			assertClose(t, "d/dx", fx, sx)
			assertClose(t, "d/dy", fy, sy)
		})
	}
}

// TestSliceGradient checks the Pad-free Slice gradient against the gradient
// of the same selection done with Gather, and against the values written
// out by hand. GoMLX's stock Slice gradient cannot run here (no Pad).
func TestSliceGradient(t *testing.T) {
	b := testBackend(t)
	r := rand.New(rand.NewPCG(3, 4))
	dims := []int{5, 6, 7}
	type axis struct{ start, limit, stride int }
	cases := []struct {
		name string
		axes [3]axis
	}{
		{"inner ranges", [3]axis{{1, 4, 1}, {0, 6, 1}, {2, 7, 1}}},
		{"single element (CLS pooling)", [3]axis{{0, 5, 1}, {0, 1, 1}, {0, 7, 1}}},
		{"last element", [3]axis{{4, 5, 1}, {0, 6, 1}, {6, 7, 1}}},
		{"strides that end exactly", [3]axis{{0, 5, 2}, {1, 6, 1}, {0, 7, 3}}},
		{"strides with a remainder", [3]axis{{1, 5, 2}, {0, 6, 4}, {2, 6, 3}}},
		{"stride over a single entry", [3]axis{{3, 4, 2}, {0, 6, 5}, {0, 7, 1}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			specs := make([]SliceAxisSpec, 3)
			var outDims [3]int
			for i, a := range c.axes {
				specs[i] = AxisRange(a.start, a.limit).Stride(a.stride)
				outDims[i] = (a.limit - a.start + a.stride - 1) / a.stride
			}
			x := randTensor(r, dims...)
			w := randTensor(r, outDims[:]...)

			// By hand: w lands at the positions the slice took, zero elsewhere.
			want := make([]float64, dims[0]*dims[1]*dims[2])
			wFlat := tensors.MustCopyFlatData[float64](w)
			var indices []int32
			n := 0
			for i := range outDims[0] {
				for j := range outDims[1] {
					for k := range outDims[2] {
						p := [3]int{c.axes[0].start + i*c.axes[0].stride, c.axes[1].start + j*c.axes[1].stride, c.axes[2].start + k*c.axes[2].stride}
						want[(p[0]*dims[1]+p[1])*dims[2]+p[2]] = wFlat[n]
						indices = append(indices, int32(p[0]), int32(p[1]), int32(p[2]))
						n++
					}
				}
			}

			before := fallbacks.Load()
			got := tensors.MustCopyFlatData[float64](MustExecOnce(b, func(x, w *Node) *Node {
				return Gradient(ReduceAllSum(Mul(Slice(x, specs...), w)), x)[0]
			}, x, w))
			if n := fallbacks.Load() - before; n != 0 {
				t.Fatalf("%d gradient(s) fell back to the stock version", n)
			}
			assertClose(t, "Slice gradient vs by hand", got, want)

			idx := tensors.FromFlatDataAndDimensions(indices, len(indices)/3, 3)
			viaGather := tensors.MustCopyFlatData[float64](MustExecOnce(b, func(x, w, idx *Node) *Node {
				picked := Reshape(Gather(x, idx), outDims[:]...)
				return Gradient(ReduceAllSum(Mul(picked, w)), x)[0]
			}, x, w, idx))
			assertClose(t, "Slice gradient vs Gather gradient", got, viaGather)
		})
	}
}

// TestParseRejectsBadText checks the parsers' guards: a format they do not
// recognise makes them report failure (and the gradient fall back to stock)
// rather than guess.
func TestParseRejectsBadText(t *testing.T) {
	if _, ok := parseInts("1 x"); ok {
		t.Error(`parseInts("1 x") succeeded`)
	}
	if got, ok := parseInts(""); !ok || len(got) != 0 {
		t.Errorf(`parseInts("") = %v, %v`, got, ok)
	}
	b := testBackend(t)
	// Axes that disagree with the shapes are rejected by consistent.
	_ = MustExecOnce(b, func(x, y *Node) *Node {
		n := DotGeneral(x, []int{1}, nil, y, []int{0}, nil)
		a, ok := parseDotGeneral(n)
		if !ok {
			t.Errorf("parseDotGeneral(%s) failed", n)
		}
		bad := a
		bad.lhsContracting = []int{0}
		if bad.consistent(x.Shape(), y.Shape(), n.Shape()) {
			t.Error("consistent accepted contracting axes of the wrong size")
		}
		bad = a
		bad.lhsBatch = []int{1}
		bad.rhsBatch = []int{0}
		if bad.consistent(x.Shape(), y.Shape(), n.Shape()) {
			t.Error("consistent accepted an axis used twice")
		}
		if _, ok := parseDotGeneral(Add(n, n)); ok {
			t.Error("parseDotGeneral accepted an Add node")
		}
		if _, _, _, ok := parseSlice(n); ok {
			t.Error("parseSlice accepted a DotGeneral node")
		}
		return n
	}, tensors.FromFlatDataAndDimensions(make([]float64, 6), 2, 3), tensors.FromFlatDataAndDimensions(make([]float64, 12), 3, 4))
}
