package backend

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// The gradient of a matrix product is two matrix products, and how fast the
// pure-Go backend runs them depends on their operands' axis order more than
// on anything else. Its kernels take lhs as [batch, M, K] and rhs either as
// [batch, K, N] ("non-transposed") or [batch, N, K] ("transposed"); any other
// order is first copied into the transposed form. On AVX2 machines the
// transposed form of a small product (M·N·K < 4M per batch item: every
// attention product) runs one horizontal vector sum per output element, ~15x
// slower than the non-transposed kernel (bench/NOTES.md, section 6: the
// attention logits of bench-lm took 40 ms instead of 2.7 ms).
//
// GoMLX v0.28 differentiates a product into products in whatever order falls
// out of the formula (often the transposed one, or one the backend must copy
// first), and ends each operand's gradient with a Transpose back to the
// operand's axis order even when that permutation is the identity (the Go
// backend still copies the tensor). InstallGradients replaces that gradient
// for the products a transformer makes (one contracting axis per operand,
// batch axes leading) by products in the non-transposed form, choosing for
// each the formulation that copies the fewest elements (product). Any other
// product keeps GoMLX's gradient, with identity transposes dropped.
//
// The product's axes are unexported upstream, so they are read from the
// node's String() form ("lhsContractingAxes=[3]"); when that cannot be
// parsed, GoMLX's gradient is used, so a change of format costs speed, never
// correctness.

var installOnce sync.Once

// InstallGradients registers peftlab's matrix-product gradient and the
// gradients of the fused softmax and layer norm (fused.go) in
// graph.VJPRegistration, GoMLX's global
// table of gradient functions; it affects every graph built afterwards, on
// every backend. New calls it; it is idempotent.
func InstallGradients() {
	installOnce.Do(func() {
		stock := graph.VJPRegistration[graph.NodeTypeDotGeneral]
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = func(node *graph.Node, v []*graph.Node, s shapes.Shape) []*graph.Node {
			return dotGeneralVJP(node, v, s, stock)
		}
		graph.VJPRegistration[graph.NodeTypeFusedSoftmax] = fusedSoftmaxVJP
		graph.VJPRegistration[graph.NodeTypeFusedLayerNorm] = fusedLayerNormVJP
	})
}

// dotAxes are a DotGeneral's contracting and batch axes.
type dotAxes struct {
	lhsContracting, lhsBatch, rhsContracting, rhsBatch []int
}

var dotAxesRE = regexp.MustCompile(`lhsContractingAxes=\[([0-9 ]*)\], lhsBatchAxes=\[([0-9 ]*)\], ` +
	`rhs=\[#[0-9]+\], rhsContractingAxes=\[([0-9 ]*)\], rhsBatchAxes=\[([0-9 ]*)\], ` +
	`config=\{AccumulatorDType:InvalidDType OutputDType:InvalidDType\}`)

// parseDotAxes reads a DotGeneral node's axes from its String() form. It
// fails for products with an accumulator or output dtype of their own.
func parseDotAxes(n *graph.Node) (dotAxes, bool) {
	m := dotAxesRE.FindStringSubmatch(n.String())
	if m == nil {
		return dotAxes{}, false
	}
	var lists [4][]int
	for i := range lists {
		for _, f := range strings.Fields(m[i+1]) {
			a, err := strconv.Atoi(f)
			if err != nil {
				return dotAxes{}, false
			}
			lists[i] = append(lists[i], a)
		}
	}
	return dotAxes{lists[0], lists[1], lists[2], lists[3]}, true
}

// dotGeneralVJP is the gradient of node = DotGeneral(a, b) for an incoming
// gradient v[0]: stock's (GoMLX's) unless each operand has one contracting
// axis and the same leading batch axes 0..nb-1.
//
// With y = [batch, aX..., bX...] (aX, bX: the operands' cross axes):
//
//	∂a = Σ over bX of v·b   (bX one axis, or adjacent axes reshaped into one)
//	∂b = Σ over aX of a·v   (likewise aX: a dense layer on [B, S, d] has two)
//
// An operand whose gradient cannot be written so takes stock's.
func dotGeneralVJP(node *graph.Node, v []*graph.Node, s shapes.Shape, stock graph.VJP) []*graph.Node {
	var stockGrads []*graph.Node
	fallback := func(i int) *graph.Node {
		if stockGrads == nil {
			stockGrads = stock(node, v, s)
		}
		return skipIdentityTranspose(stockGrads[i])
	}
	ins := node.Inputs()
	p, ok := parseDotAxes(node)
	if !ok || len(ins) != 2 || len(v) != 1 || v[0].DType() != node.DType() ||
		len(p.lhsContracting) != 1 || len(p.rhsContracting) != 1 ||
		!leading(p.lhsBatch) || !slices.Equal(p.lhsBatch, p.rhsBatch) ||
		ins[0].DType() != node.DType() || ins[1].DType() != node.DType() {
		return []*graph.Node{fallback(0), fallback(1)}
	}
	a, b, dy := ins[0], ins[1], v[0]
	nb := len(p.lhsBatch)
	ca, cb := p.lhsContracting[0], p.rhsContracting[0]
	aX, bX := crossAxes(a.Rank(), nb, ca), crossAxes(b.Rank(), nb, cb)

	grads := make([]*graph.Node, 2)
	switch {
	case len(bX) == 1:
		// Σ_n dy[batch, aX..., n]·b[batch, (k, n)]: [batch, aX..., k] or [batch, k, aX...].
		grads[0] = product(dy, nb+len(aX), b, bX[0], nb, ca, false)
	case contiguous(bX):
		// b's cross axes summed over as one: b [batch, (k, N)], dy [batch, aX..., N].
		dyBX := span(nb+len(aX), dy.Rank())
		grads[0] = product(mergeAxes(dy, dyBX), dyBX[0], mergeAxes(b, bX), bX[0], nb, ca, false)
	default:
		grads[0] = fallback(0)
	}
	switch {
	case len(aX) == 1:
		// Σ_m a[batch, (m, k)]·dy[batch, m, bX...]: [batch, k, bX...] or [batch, bX..., k].
		grads[1] = product(a, aX[0], dy, nb, nb, cb, true)
	case contiguous(aX):
		// A dense layer on a sequence (x [B, S, d]·w [d, r]): a's cross axes summed over as
		// one, a [batch, (M, k)], dy [batch, M, bX...].
		grads[1] = product(mergeAxes(a, aX), aX[0], mergeAxes(dy, span(nb, nb+len(aX))), nb, nb, cb, true)
	default:
		grads[1] = fallback(1)
	}
	return grads
}

// span is the axes from, from+1, ..., to-1.
func span(from, to int) []int {
	out := make([]int, 0, to-from)
	for a := from; a < to; a++ {
		out = append(out, a)
	}
	return out
}

// contiguous reports whether axes (increasing) are adjacent.
func contiguous(axes []int) bool {
	return len(axes) > 0 && axes[len(axes)-1]-axes[0] == len(axes)-1
}

// mergeAxes reshapes n so that its adjacent axes (increasing, contiguous)
// become one axis at axes[0]: a reshape, no reordering of elements.
func mergeAxes(n *graph.Node, axes []int) *graph.Node {
	if len(axes) <= 1 {
		return n
	}
	dims := n.Shape().Dimensions
	merged := 1
	for _, a := range axes {
		merged *= dims[a]
	}
	out := slices.Concat(dims[:axes[0]], []int{merged}, dims[axes[len(axes)-1]+1:])
	return graph.Reshape(n, out...)
}

// leading reports whether axes are 0, 1, ..., len(axes)-1.
func leading(axes []int) bool {
	for i, a := range axes {
		if a != i {
			return false
		}
	}
	return true
}

// crossAxes are the axes of a rank-r operand that are neither one of the nb
// leading batch axes nor its contracting axis c.
func crossAxes(r, nb, c int) []int {
	var out []int
	for a := nb; a < r; a++ {
		if a != c {
			out = append(out, a)
		}
	}
	return out
}

// product is Σ_k l·r, contracting axis lc of l with axis rc of r over their
// nb leading batch axes: the gradient of one operand of a product, returned
// in that operand's axis order. That order is: the batch axes, then the
// remaining axes of l and of r, where position at holds the one remaining
// axis of l (atFromL) or of r (otherwise), and the other factor's remaining
// axes fill the other positions in order.
//
// Of the two ways to feed the kernel (l as lhs, or r as lhs), it takes the
// one that copies the fewest elements to bring lhs to [batch, M, K], rhs to
// [batch, K, N] and the output to the operand's order.
func product(l *graph.Node, lc int, r *graph.Node, rc, nb, at int, atFromL bool) *graph.Node {
	lX, rX := crossAxes(l.Rank(), nb, lc), crossAxes(r.Rank(), nb, rc)
	// With l as lhs the output is [batch, lX..., rX...]; want[i] is the index in that
	// order of the operand's axis i.
	outRank := nb + len(lX) + len(rX)
	want := make([]int, outRank)
	for i := range nb {
		want[i] = i
	}
	single, next := nb, nb+len(lX) // atFromL: l's axis at `at`, r's axes elsewhere
	if !atFromL {
		single, next = nb+len(lX), nb
	}
	for i := nb; i < outRank; i++ {
		if i == at {
			want[i] = single
		} else {
			want[i] = next
			next++
		}
	}
	outSize := 1
	for _, d := range l.Shape().Dimensions[:nb] {
		outSize *= d
	}
	for _, ax := range lX {
		outSize *= l.Shape().Dimensions[ax]
	}
	for _, ax := range rX {
		outSize *= r.Shape().Dimensions[ax]
	}
	// Option A: lhs = l (lc last), rhs = r (rc first after batch); output order [batch, lX, rX].
	permA := want
	costA := moveCost(l, lc, l.Rank()-1) + moveCost(r, rc, nb)
	if !leading(permA) {
		costA += outSize
	}
	// Option B: lhs = r (rc last), rhs = l (lc first); output order [batch, rX, lX].
	permB := make([]int, outRank)
	for i, w := range want {
		switch {
		case w < nb:
			permB[i] = w
		case w < nb+len(lX): // an lX axis: after rX in B's order
			permB[i] = w + len(rX)
		default: // an rX axis: first in B's order
			permB[i] = w - len(lX)
		}
	}
	costB := moveCost(r, rc, r.Rank()-1) + moveCost(l, lc, nb)
	if !leading(permB) {
		costB += outSize
	}
	var out *graph.Node
	var perm []int
	if costA <= costB {
		out, perm = matmul(l, lc, r, rc, nb), permA
	} else {
		out, perm = matmul(r, rc, l, lc, nb), permB
	}
	if leading(perm) {
		return out
	}
	return graph.TransposeAllAxes(out, perm...)
}

// moveCost is the number of elements copied to move axis from of n to
// position to (0 when it is there already).
func moveCost(n *graph.Node, from, to int) int {
	if from == to {
		return 0
	}
	return n.Shape().Size()
}

// matmul is DotGeneral(lhs, {lc}, batch, rhs, {rc}, batch) over the nb
// leading batch axes, with lhs's contracting axis moved last and rhs's moved
// first after the batch axes: the backend's non-transposed layout, run
// without further copies.
func matmul(lhs *graph.Node, lc int, rhs *graph.Node, rc, nb int) *graph.Node {
	lhs, lc = moveAxis(lhs, lc, lhs.Rank()-1)
	rhs, rc = moveAxis(rhs, rc, nb)
	batch := make([]int, nb)
	for i := range batch {
		batch[i] = i
	}
	return graph.DotGeneral(lhs, []int{lc}, batch, rhs, []int{rc}, batch)
}

// moveAxis transposes n so that axis from lands at position to, keeping the
// order of the other axes; it returns the result and the axis's new index.
func moveAxis(n *graph.Node, from, to int) (*graph.Node, int) {
	if from == to {
		return n, to
	}
	var others []int
	for a := range n.Rank() {
		if a != from {
			others = append(others, a)
		}
	}
	perm := slices.Insert(others, to, from)
	return graph.TransposeAllAxes(n, perm...), to
}

var permutationRE = regexp.MustCompile(`permutation=\[([0-9 ]*)\]`)

// skipIdentityTranspose returns the input of n when n is a Transpose that
// moves nothing, and n otherwise.
func skipIdentityTranspose(n *graph.Node) *graph.Node {
	if n == nil || n.Type() != graph.NodeTypeTranspose || len(n.Inputs()) != 1 {
		return n
	}
	in := n.Inputs()[0]
	if !slices.Equal(in.Shape().Dimensions, n.Shape().Dimensions) || in.DType() != n.DType() {
		return n
	}
	m := permutationRE.FindStringSubmatch(n.String())
	if m == nil {
		return n
	}
	fields := strings.Fields(m[1])
	if len(fields) != n.Rank() {
		return n
	}
	for i, f := range fields {
		if p, err := strconv.Atoi(f); err != nil || p != i {
			return n
		}
	}
	return in
}
