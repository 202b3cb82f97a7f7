package model

import (
	"os"
	"strconv"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	"github.com/gomlx/gomlx/support/exceptions"
	"github.com/peftlab/peftlab/pkg/backend"
)

// The model's softmaxes (attention, and the loss's log-normalizer) run as
// the backend's fused softmax, with backward passes of peftlab's own. Why
// not GoMLX's wrapper graph.Softmax? It pairs the fused op with its
// decomposed formula, built into the same graph for the gradient; the Go
// backend skips only nodes nothing reads, so the decomposed chain's first
// ops (Exp, in float64, one element at a time: see Gelu for how slow
// math.Exp is here) run on every call, training or not: in the text base's
// FT step math.Exp took over half the time (bench/NOTES.md, section 2).
// The attention's softmax has its gradient registered for the fused op
// (backend.InstallGradients), so it costs nothing extra forward; the loss's
// log-normalizer and GELU take theirs through a gradient carrier, which
// costs two or three element-wise passes in every graph (see withGradient).

// stockOps switches the model to GoMLX's own wrappers and gradients, so
// tests can compare against them.
var stockOps = false

// fusedOr returns fused(), or fallback() when the backend has no such fused
// op (or GOMLX_FUSION is off). Unlike graph.InternalFusedOpCaller it builds
// the fallback only when it is used.
func fusedOr(fused, fallback func() *Node) (out *Node) {
	if on, err := strconv.ParseBool(os.Getenv(FusionEnv)); err == nil && !on {
		return fallback()
	}
	err := exceptions.TryCatch[error](func() { out = fused() })
	if err == nil {
		return out
	}
	if compute.IsNotImplemented(err) {
		return fallback()
	}
	panic(err)
}

// withGradient returns value, a function of x computed without a gradient
// path, as a node whose gradient with respect to x is vjp(v) for an incoming
// gradient v. It adds to value a zero that carries the gradient, x - sg(x)
// (sg = StopGradient), so its value is value exactly, at the cost of three
// element-wise passes; vjp's nodes are built by the backward pass only. When
// value has fewer axes than x (a reduction over x's last axis), the zero is
// x's row sums minus themselves, and vjp receives v repeated along x's last
// axis.
func withGradient(value, x *Node, vjp func(v *Node) *Node) *Node {
	if value.Rank() < x.Rank() {
		// Summing a zero [..., k] would cost a pass and a slow reduction over x: the
		// carrier is x's row sums instead (a product, backend.SumLast), minus
		// themselves. The gradient reaching x is v repeated along the last axis.
		sums := backend.SumLast(IdentityWithCustomGradient(x, func(_, v *Node) *Node { return vjp(v) }))
		return Add(StopGradient(value), Sub(sums, StopGradient(sums)))
	}
	zero := IdentityWithCustomGradient(Sub(x, StopGradient(x)), func(_, v *Node) *Node { return vjp(v) })
	return Add(StopGradient(value), zero)
}

// fusedSoftmax is softmax over the last axis: the backend's fused op, whose
// gradient backend.InstallGradients registers, or the formula where the
// backend has none.
func fusedSoftmax(x *Node) *Node {
	return fusedOr(func() *Node { return BackendFusedSoftmax(x, x.Rank()-1) }, func() *Node {
		e := Exp(Sub(x, StopGradient(ReduceAndKeep(x, ReduceMax, -1))))
		return Div(e, ReduceAndKeep(e, ReduceSum, -1))
	})
}
