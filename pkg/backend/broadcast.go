package backend

import (
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// The Go backend runs an element-wise operation between tensors of
// different shapes (x [N, d] + b [1, d], x [N, d] − m [N, 1]) through a
// per-element index iterator, about 6 ns per element against 1.3 ns for
// operands of the same shape, and reduces over leading axes through another
// (bench/NOTES.md, section 7). A matrix product with a vector of ones does
// either job on the product kernels instead: repeating a vector is a product
// with one contracting element (exact: 1·b = b), and a sum over rows is
// onesᵀ·x. These helpers are that, for the shapes a transformer needs, on the
// Go backend. Elsewhere they are the plain broadcast or reduction: XLA fuses
// those into their neighbours, and the products with ones made its FT step on
// the wide model 1.25x slower (bench/NOTES.md, section 11).

// onGo reports whether g is built for the pure-Go backend.
func onGo(g *graph.Graph) bool { return g.Backend().Name() == gobackend.BackendName }

// RepeatRows returns b [d] repeated n times, [n, d]: exactly b in every row.
func RepeatRows(b *graph.Node, n int) *graph.Node {
	if !onGo(b.Graph()) {
		return graph.BroadcastToDims(graph.InsertAxes(b, 0), n, b.Shape().Dimensions[0])
	}
	ones := graph.Ones(b.Graph(), shapes.Make(b.DType(), n, 1))
	return graph.Dot(ones, graph.InsertAxes(b, 0)).Product()
}

// ExpandLast returns x [..., 1] repeated n times along its last axis,
// [..., n]: exactly x's value in every column.
func ExpandLast(x *graph.Node, n int) *graph.Node {
	dims := x.Shape().Dimensions
	if !onGo(x.Graph()) {
		return graph.BroadcastToDims(x, append(append([]int{}, dims[:len(dims)-1]...), n)...)
	}
	ones := graph.Ones(x.Graph(), shapes.Make(x.DType(), 1, n))
	out := graph.Dot(graph.Reshape(x, -1, 1), ones).Product()
	return graph.Reshape(out, append(append([]int{}, dims[:len(dims)-1]...), n)...)
}

// SumLast returns the sum of x [..., k] over its last axis, [...], as the
// product x·onesᵀ with ones [1, k] (both operands contracting their last
// axis). That layout runs on the backend's vectorized small kernels when k is
// long (a vocabulary); ReduceSum walks the same elements through a per-element
// output iterator, and x·ones[k, 1] runs a kernel with one output column
// (bench/NOTES.md, sections 8 and 10).
func SumLast(x *graph.Node) *graph.Node {
	if !onGo(x.Graph()) {
		return graph.ReduceSum(x, -1)
	}
	dims := x.Shape().Dimensions
	k := dims[len(dims)-1]
	ones := graph.Ones(x.Graph(), shapes.Make(x.DType(), 1, k))
	sums := graph.DotGeneral(graph.Reshape(x, -1, k), []int{1}, nil, ones, []int{1}, nil)
	return graph.Reshape(sums, dims[:len(dims)-1]...)
}

// SumRows returns the sum of x [..., d] over all its axes but the last, [d],
// as the product onesᵀ·x.
func SumRows(x *graph.Node) *graph.Node {
	dims := x.Shape().Dimensions
	d := dims[len(dims)-1]
	flat := graph.Reshape(x, -1, d)
	if !onGo(x.Graph()) {
		return graph.ReduceSum(flat, 0)
	}
	ones := graph.Ones(x.Graph(), shapes.Make(x.DType(), 1, flat.Shape().Dimensions[0]))
	return graph.Reshape(graph.Dot(ones, flat).Product(), d)
}
