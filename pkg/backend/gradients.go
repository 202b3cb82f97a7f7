package backend

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// GoMLX v0.26.0 differentiates matrix products (Dot and DotGeneral nodes) by
// broadcasting both operands to a [batch, lhsCross, rhsCross, contracting]
// tensor, multiplying and reducing it. That materialises M·K·N numbers per
// product and makes training on the pure-Go backend 6-10x slower than it need
// be. The gradient of a matrix product is itself a matrix product, so the
// replacements registered here are built from DotGeneral calls and at most one
// transpose per operand.
//
// Its Slice gradient pads the incoming gradient with Pad, which the pure-Go
// backend does not implement: slicing on a differentiated path panics during
// training. The replacement here builds the same tensor with Concatenate and
// Reshape.
//
// Both read the node's hyperparameters (axes, slice bounds), which GoMLX keeps
// unexported, from the node's String() form. When the text cannot be parsed or
// does not agree with the node's shapes, they fall back to the stock gradient,
// so a future change of that format costs speed, never correctness.

var (
	installOnce sync.Once
	stockVJP    map[graph.NodeType]graph.VJP // Entries replaced by InstallGradients, as they were.
	fastVJP     map[graph.NodeType]graph.VJP // peftlab's replacements.
	gradMu      sync.Mutex
	fastOn      bool
)

// InstallGradients registers peftlab's gradients for Dot, DotGeneral and Slice
// nodes in graph.VJPRegistration, GoMLX's global table of gradient functions.
// It affects every graph built afterwards in the process, on every backend.
//
// New calls it, so users of this package rarely need to. It is explicit (and
// not done at import time) so that importing this package alone never changes
// how GoMLX differentiates. It is idempotent and safe to call from several
// goroutines, but like any change to graph.VJPRegistration it must not run
// while another goroutine is building a gradient graph: call it (or New) before
// building models.
func InstallGradients() {
	installOnce.Do(func() {
		stockVJP = map[graph.NodeType]graph.VJP{}
		fastVJP = map[graph.NodeType]graph.VJP{
			graph.NodeTypeDotGeneral: single(dotGeneralVJP),
			graph.NodeTypeDot:        single(dotVJP),
			graph.NodeTypeSlice:      single(sliceVJP),
		}
		for t, fn := range fastVJP {
			stockVJP[t] = graph.VJPRegistration[t]
			graph.VJPRegistration[t] = fn
		}
		gradMu.Lock()
		fastOn = true
		gradMu.Unlock()
	})
}

// SetFastGradients switches between peftlab's gradients (true, what New
// installs) and GoMLX's stock ones (false), for benchmarks and tests that
// compare the two. It only affects graphs built afterwards: a trainer that has
// already compiled its step keeps the gradients it was built with. Same
// concurrency caveat as InstallGradients.
func SetFastGradients(enabled bool) {
	InstallGradients()
	gradMu.Lock()
	defer gradMu.Unlock()
	src := stockVJP
	if enabled {
		src = fastVJP
	}
	for t, fn := range src {
		graph.VJPRegistration[t] = fn
	}
	fastOn = enabled
}

// FastGradients reports whether peftlab's gradients are registered, i.e.
// InstallGradients (or New) ran and SetFastGradients(false) did not follow.
func FastGradients() bool {
	gradMu.Lock()
	defer gradMu.Unlock()
	return fastOn
}

// single adapts a one-output gradient to graph.VJP.
func single(fn func(node, v *graph.Node, out shapes.Shape) []*graph.Node) graph.VJP {
	return func(node *graph.Node, vjps []*graph.Node, out shapes.Shape) []*graph.Node {
		return fn(node, vjps[0], out)
	}
}

// fallbacks counts the gradients that fell back to the stock ones: tests
// check it stays zero on the shapes they cover.
var fallbacks atomic.Int64

// stock calls GoMLX's own gradient for the node's type.
func stock(node, v *graph.Node, out shapes.Shape) []*graph.Node {
	fallbacks.Add(1)
	return stockVJP[node.Type()](node, []*graph.Node{v}, out)
}

// dotAxes are the hyperparameters of a DotGeneral node.
type dotAxes struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

var dotGeneralText = regexp.MustCompile(`DotGeneral\(lhs=\[#(\d+)\], lhsContractingAxes=\[([\d ]*)\], ` +
	`lhsBatchAxes=\[([\d ]*)\], rhs=\[#(\d+)\], rhsContractingAxes=\[([\d ]*)\], rhsBatchAxes=\[([\d ]*)\]\)`)

// parseDotGeneral recovers a DotGeneral node's axes from its String() and
// checks them against the node's inputs and output shape.
func parseDotGeneral(node *graph.Node) (dotAxes, bool) {
	ins := node.Inputs()
	if len(ins) != 2 {
		return dotAxes{}, false
	}
	var found []string
	for _, m := range dotGeneralText.FindAllStringSubmatch(node.String(), -1) {
		if m[1] == strconv.Itoa(int(ins[0].Id())) && m[4] == strconv.Itoa(int(ins[1].Id())) {
			if found != nil {
				return dotAxes{}, false // Ambiguous (e.g. an alias that mimics the format).
			}
			found = m
		}
	}
	if found == nil {
		return dotAxes{}, false
	}
	var a dotAxes
	var ok bool
	fields := []*[]int{&a.lhsContracting, &a.lhsBatch, nil, &a.rhsContracting, &a.rhsBatch}
	for i, f := range fields {
		if f == nil {
			continue
		}
		if *f, ok = parseInts(found[2+i]); !ok {
			return dotAxes{}, false
		}
	}
	if !a.consistent(ins[0].Shape(), ins[1].Shape(), node.Shape()) {
		return dotAxes{}, false
	}
	return a, true
}

// parseInts parses the %v form of an []int, e.g. "1 2" or "".
func parseInts(s string) ([]int, bool) {
	out := []int{}
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// crossAxes returns, in increasing order, the axes of a rank-r operand that
// are neither contracted nor batch: they appear in the output in that order.
func crossAxes(rank int, contracting, batch []int) []int {
	var out []int
	for ax := range rank {
		if !slices.Contains(contracting, ax) && !slices.Contains(batch, ax) {
			out = append(out, ax)
		}
	}
	return out
}

// consistent checks that the axes are valid for the operand shapes and that
// they produce the node's output shape.
func (a dotAxes) consistent(lhs, rhs, out shapes.Shape) bool {
	if len(a.lhsContracting) != len(a.rhsContracting) || len(a.lhsBatch) != len(a.rhsBatch) {
		return false
	}
	valid := func(rank int, axes ...[]int) bool {
		seen := make([]bool, rank)
		for _, list := range axes {
			for _, ax := range list {
				if ax < 0 || ax >= rank || seen[ax] {
					return false
				}
				seen[ax] = true
			}
		}
		return true
	}
	if !valid(lhs.Rank(), a.lhsContracting, a.lhsBatch) || !valid(rhs.Rank(), a.rhsContracting, a.rhsBatch) {
		return false
	}
	var dims []int
	for i, ax := range a.lhsBatch {
		if lhs.Dimensions[ax] != rhs.Dimensions[a.rhsBatch[i]] {
			return false
		}
		dims = append(dims, lhs.Dimensions[ax])
	}
	for i, ax := range a.lhsContracting {
		if lhs.Dimensions[ax] != rhs.Dimensions[a.rhsContracting[i]] {
			return false
		}
	}
	for _, ax := range crossAxes(lhs.Rank(), a.lhsContracting, a.lhsBatch) {
		dims = append(dims, lhs.Dimensions[ax])
	}
	for _, ax := range crossAxes(rhs.Rank(), a.rhsContracting, a.rhsBatch) {
		dims = append(dims, rhs.Dimensions[ax])
	}
	return slices.Equal(dims, out.Dimensions) && lhs.DType == out.DType && rhs.DType == out.DType
}

// dotGeneralVJP is the gradient of a DotGeneral node as two DotGenerals.
func dotGeneralVJP(node, v *graph.Node, out shapes.Shape) []*graph.Node {
	a, ok := parseDotGeneral(node)
	if !ok {
		return stock(node, v, out)
	}
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	return dotGrads(lhs, rhs, a, v)
}

// dotGrads returns the gradients of out = DotGeneral(lhs, rhs) given v = dL/dout.
//
// The output's axes are [batch..., lhsCross..., rhsCross...]. Contracting v
// with rhs over the rhs cross axes (batch axes kept) gives a tensor with axes
// [batch..., lhsCross..., rhs's contracting axes in increasing order], which
// is dL/dlhs up to a transpose; dL/drhs is the mirror image.
func dotGrads(lhs, rhs *graph.Node, a dotAxes, v *graph.Node) []*graph.Node {
	nb := len(a.lhsBatch)
	lhsCross := crossAxes(lhs.Rank(), a.lhsContracting, a.lhsBatch)
	rhsCross := crossAxes(rhs.Rank(), a.rhsContracting, a.rhsBatch)
	vBatch := iota(0, nb)
	vLhsCross := iota(nb, len(lhsCross))
	vRhsCross := iota(nb+len(lhsCross), len(rhsCross))

	// dL/dlhs: axes [batch, lhsCross, sorted(rhsContracting)].
	gl := graph.DotGeneral(v, vRhsCross, vBatch, rhs, rhsCross, a.rhsBatch)
	perm := make([]int, lhs.Rank()) // perm[lhsAxis] = axis of gl.
	for i, ax := range a.lhsBatch {
		perm[ax] = i
	}
	for i, ax := range lhsCross {
		perm[ax] = nb + i
	}
	for i, ax := range a.lhsContracting {
		perm[ax] = nb + len(lhsCross) + rankIn(a.rhsContracting, a.rhsContracting[i])
	}
	gl = transposeTo(gl, perm)

	// dL/drhs: DotGeneral(lhs, v) has axes [batch, sorted(lhsContracting), rhsCross].
	gr := graph.DotGeneral(lhs, lhsCross, a.lhsBatch, v, vLhsCross, vBatch)
	perm = make([]int, rhs.Rank())
	for i, ax := range a.rhsBatch {
		perm[ax] = i
	}
	for i, ax := range a.rhsContracting {
		perm[ax] = nb + rankIn(a.lhsContracting, a.lhsContracting[i])
	}
	for i, ax := range rhsCross {
		perm[ax] = nb + len(a.lhsContracting) + i
	}
	gr = transposeTo(gr, perm)
	return []*graph.Node{gl, gr}
}

// iota returns [start, start+1, ..., start+n-1].
func iota(start, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = start + i
	}
	return out
}

// rankIn returns how many values of list are smaller than x: the position x
// takes when list is sorted.
func rankIn(list []int, x int) int {
	n := 0
	for _, y := range list {
		if y < x {
			n++
		}
	}
	return n
}

// transposeTo returns the tensor whose axis i is axis perm[i] of x, skipping
// the identity permutation.
func transposeTo(x *graph.Node, perm []int) *graph.Node {
	for i, p := range perm {
		if i != p {
			return graph.TransposeAllAxes(x, perm...)
		}
	}
	return x
}

// dotVJP is the gradient of a Dot node (graph.Dot, used by layers.Dense and
// graph.MatMul on operands of rank <= 2), expressed as the DotGeneral it is.
func dotVJP(node, v *graph.Node, out shapes.Shape) []*graph.Node {
	lhs, rhs := node.Inputs()[0], node.Inputs()[1]
	var a dotAxes
	switch {
	case lhs.Rank() == 1 && rhs.Rank() == 1:
		a = dotAxes{lhsContracting: []int{0}, rhsContracting: []int{0}}
	case lhs.Rank() == 2 && (rhs.Rank() == 1 || rhs.Rank() == 2):
		a = dotAxes{lhsContracting: []int{1}, rhsContracting: []int{0}}
	default:
		return stock(node, v, out)
	}
	if !a.consistent(lhs.Shape(), rhs.Shape(), node.Shape()) {
		return stock(node, v, out)
	}
	return dotGrads(lhs, rhs, a, v)
}

var sliceText = regexp.MustCompile(`Slice\(x=\[#(\d+)\], starts=\[([\d ]*)\], limits=\[([\d ]*)\], strides=\[([\d ]*)\]\)`)

// parseSlice recovers a Slice node's bounds from its String() and checks them
// against its input and output shapes.
func parseSlice(node *graph.Node) (starts, limits, strides []int, ok bool) {
	ins := node.Inputs()
	if len(ins) != 1 {
		return nil, nil, nil, false
	}
	var found []string
	for _, m := range sliceText.FindAllStringSubmatch(node.String(), -1) {
		if m[1] == strconv.Itoa(int(ins[0].Id())) {
			if found != nil {
				return nil, nil, nil, false
			}
			found = m
		}
	}
	if found == nil {
		return nil, nil, nil, false
	}
	var ok1, ok2, ok3 bool
	starts, ok1 = parseInts(found[2])
	limits, ok2 = parseInts(found[3])
	strides, ok3 = parseInts(found[4])
	x := ins[0].Shape()
	r := x.Rank()
	if !ok1 || !ok2 || !ok3 || len(starts) != r || len(limits) != r || len(strides) != r || node.Rank() != r {
		return nil, nil, nil, false
	}
	for ax := range r {
		if strides[ax] < 1 {
			strides[ax] = 1 // GoMLX treats strides <= 1 as 1.
		}
		s, l, d := starts[ax], limits[ax], x.Dimensions[ax]
		if s < 0 || l > d || s >= l || node.Shape().Dimensions[ax] != (l-s+strides[ax]-1)/strides[ax] {
			return nil, nil, nil, false
		}
	}
	return starts, limits, strides, true
}

// sliceVJP is the gradient of a Slice node without Pad: v is spread back to
// the positions it was taken from, one axis at a time, with zeros elsewhere.
func sliceVJP(node, v *graph.Node, out shapes.Shape) []*graph.Node {
	starts, _, strides, ok := parseSlice(node)
	if !ok {
		return stock(node, v, out)
	}
	x := node.Inputs()[0]
	g := v
	for ax := range x.Rank() {
		g = unsliceAxis(g, ax, starts[ax], strides[ax], x.Shape().Dimensions[ax])
	}
	return []*graph.Node{g}
}

// unsliceAxis places the n entries of g along axis at positions start,
// start+stride, ... of an axis of length dim, zero elsewhere.
func unsliceAxis(g *graph.Node, axis, start, stride, dim int) *graph.Node {
	n := g.Shape().Dimensions[axis]
	if stride > 1 && n > 1 {
		// Interleave stride-1 zeros after each entry: [.., n, 1, ..] ++ zeros
		// [.., n, stride-1, ..] along the new axis, then merge the two axes.
		e := graph.InsertAxes(g, axis+1)
		e = graph.Concatenate([]*graph.Node{e, zerosAlong(e, axis+1, stride-1)}, axis+1)
		dims := slices.Clone(g.Shape().Dimensions)
		dims[axis] = n * stride
		g = graph.Reshape(e, dims...)
		if start+n*stride > dim {
			// The zeros after the last entry run past the end: drop them.
			g = graph.SliceAxis(g, axis, graph.AxisRange(0, dim-start))
		}
	}
	n = g.Shape().Dimensions[axis]
	parts := make([]*graph.Node, 0, 3)
	if start > 0 {
		parts = append(parts, zerosAlong(g, axis, start))
	}
	parts = append(parts, g)
	if end := dim - start - n; end > 0 {
		parts = append(parts, zerosAlong(g, axis, end))
	}
	if len(parts) == 1 {
		return g
	}
	return graph.Concatenate(parts, axis)
}

// zerosAlong returns zeros shaped like x except for dimension n along axis.
func zerosAlong(x *graph.Node, axis, n int) *graph.Node {
	s := x.Shape().Clone()
	s.Dimensions[axis] = n
	return graph.Zeros(x.Graph(), s)
}
