package backend

import (
	"regexp"
	"strconv"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// GoMLX's fused ops (graph.BackendFusedSoftmax, BackendFusedLayerNorm, ...)
// have no gradient of their own: its wrappers (graph.Softmax) build the
// decomposed formula beside the fused node and differentiate that, and the
// Go backend then runs the decomposed chain's first ops on every call
// (bench/NOTES.md, section 2). peftlab calls the fused softmax and layer norm
// directly and registers their gradients here, so the forward pass is the
// fused kernel alone. For y = softmax(x) and an incoming gradient v,
//
//	∂x = y·(v − Σ v·y)   (the sum over the softmax axis)
//
// two products, a sum and a difference, with no exponential; for the layer
// norm see fusedLayerNormVJP. Broadcasts along rows and columns are written
// as products with ones (broadcast.go).

var softmaxAxisRE = regexp.MustCompile(`FusedSoftmax\(x=\[#[0-9]+\], axis=(-?[0-9]+)\)`)

// fusedSoftmaxVJP is the gradient of a FusedSoftmax node.
func fusedSoftmaxVJP(node *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
	axis, ok := softmaxAxis(node)
	if !ok {
		panic("backend: cannot read the axis of " + node.String())
	}
	// The backward pass is not differentiated again: no StopGradient on y, which on the Go
	// backend would copy it.
	y := node
	sum := graph.ReduceAndKeep(graph.Mul(v[0], y), graph.ReduceSum, axis)
	if axis == y.Rank()-1 || axis == -1 {
		sum = ExpandLast(sum, y.Shape().Dimensions[y.Rank()-1])
	}
	return []*graph.Node{graph.Mul(y, graph.Sub(v[0], sum))}
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

var layerNormRE = regexp.MustCompile(`FusedLayerNorm\(x=\[#[0-9]+\], axes=\[(-?[0-9]+)\], epsilon=([^,]+), gamma=(nil|\[#[0-9]+\]), beta=(nil|\[#[0-9]+\])\)`)

// fusedLayerNormVJP is the gradient of a FusedLayerNorm node over the last
// axis, y = x̂·γ + β with x̂ = (x − μ)·r, r = 1/√(σ² + ε) (γ and β optional).
// With u = v·γ and means over the normalized axis:
//
//	∂x = r·(u − mean(u) − x̂·mean(u·x̂)),  ∂γ = Σ_rows v·x̂,  ∂β = Σ_rows v
//
// μ, σ² and so x̂ are recomputed from x (the fused op keeps no state).
func fusedLayerNormVJP(node *graph.Node, v []*graph.Node, _ shapes.Shape) []*graph.Node {
	m := layerNormRE.FindStringSubmatch(node.String())
	ins := node.Inputs()
	x := ins[0]
	d := x.Shape().Dimensions[x.Rank()-1]
	if m == nil {
		panic("backend: cannot read the axes of " + node.String())
	}
	if axis, err := strconv.Atoi(m[1]); err != nil || (axis != x.Rank()-1 && axis != -1) {
		panic("backend: the gradient of a layer norm over other than the last axis is not implemented: " + node.String())
	}
	eps, err := strconv.ParseFloat(m[2], 64)
	if err != nil {
		panic("backend: cannot read the epsilon of " + node.String())
	}
	var gamma *graph.Node
	if m[3] != "nil" {
		gamma = ins[1]
	}
	hasBeta := m[4] != "nil"

	mean := func(t *graph.Node) *graph.Node { return graph.ReduceAndKeep(t, graph.ReduceMean, -1) }
	expand := func(t *graph.Node) *graph.Node { return ExpandLast(t, d) }
	xc := graph.Sub(x, expand(mean(x))) // not differentiated again: no StopGradient (a copy)
	r := expand(graph.Inverse(graph.Sqrt(graph.AddScalar(mean(graph.Square(xc)), eps))))
	xhat := graph.Mul(xc, r)

	dy := v[0]
	rowsOf := func(t *graph.Node) *graph.Node { // t [d] as dy's shape
		return graph.Reshape(RepeatRows(t, dy.Shape().Size()/d), dy.Shape().Dimensions...)
	}
	u := dy
	if gamma != nil {
		u = graph.Mul(dy, rowsOf(gamma))
	}
	dx := graph.Mul(r, graph.Sub(graph.Sub(u, expand(mean(u))), graph.Mul(xhat, expand(mean(graph.Mul(u, xhat))))))
	grads := []*graph.Node{dx}
	if gamma != nil {
		grads = append(grads, graph.Reshape(SumRows(graph.Mul(dy, xhat)), gamma.Shape().Dimensions...))
	}
	if hasBeta {
		beta := ins[len(ins)-1]
		grads = append(grads, graph.Reshape(SumRows(dy), beta.Shape().Dimensions...))
	}
	return grads
}
