package backend

import (
	"regexp"
	"strconv"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// GoMLX's fused ops (graph.BackendFusedSoftmax and friends) have no gradient
// of their own: its wrappers (graph.Softmax) build the decomposed formula
// beside the fused node and differentiate that, and the Go backend then runs
// the decomposed chain's first ops on every call (bench/NOTES.md, section 2).
// peftlab calls the fused softmax directly and registers its gradient here,
// so the forward pass is the fused kernel alone and the backward pass is
//
//	∂x = y·(v − Σ v·y)   (the sum over the softmax axis)
//
// for y = softmax(x) and an incoming gradient v: two products, a sum and a
// difference, with no exponential.

var softmaxAxisRE = regexp.MustCompile(`FusedSoftmax\(x=\[#[0-9]+\], axis=(-?[0-9]+)\)`)

// fusedSoftmaxVJP is the gradient of a FusedSoftmax node.
func fusedSoftmaxVJP(node *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
	axis, ok := softmaxAxis(node)
	if !ok {
		panic("backend: cannot read the axis of " + node.String())
	}
	y := graph.StopGradient(node) // the backward pass is not differentiated again
	return []*graph.Node{graph.Mul(y, graph.Sub(v[0], graph.ReduceAndKeep(graph.Mul(v[0], y), graph.ReduceSum, axis)))}
}

// softmaxAxis reads a FusedSoftmax node's axis from its String() form
// ("Node #12 FusedSoftmax(x=[#11], axis=3) -> ...").
func softmaxAxis(n *graph.Node) (int, bool) {
	m := softmaxAxisRE.FindStringSubmatch(n.String())
	if m == nil {
		return 0, false
	}
	axis, err := strconv.Atoi(m[1])
	return axis, err == nil
}
