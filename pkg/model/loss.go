package model

import (
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
)

// NLL returns the negative log-likelihood of the targets under the logits,
// -log softmax(logits)[target], one value per target: logits are [..., K]
// and targets [...] Int32 in [0, K). It is the cross-entropy of every
// peftlab objective (next token, class), written for the pure-Go backend:
//
//   - the log-normalizer comes from the backend's fused softmax s (float32
//     Exp) as max(x) - log(max(s)), which is exact up to rounding because
//     the largest probability is at least 1/K;
//   - the target logit is a Gather, not a product with a one-hot [..., K]
//     tensor;
//   - the gradient of the log-normalizer is s·v, given directly, instead of
//     GoMLX differentiating a decomposed LogSoftmax (which recomputes Exp in
//     float64, one element at a time).
//
// The values agree with LogSoftmax and OneHot to float32 precision
// (TestNLL).
func NLL(logits, targets *Node) *Node {
	dims := logits.Shape().Dimensions
	k := dims[len(dims)-1]
	var lse *Node
	if stockOps {
		lse = stockLogSumExp(logits)
	} else {
		s := fusedSoftmax(logits)
		lse = withGradient(Sub(ReduceMax(logits, -1), Log(ReduceMax(s, -1))), logits, func(v *Node) *Node {
			return Mul(s, v)
		})
	}
	// The target logit: flat index row·K + target into the flattened logits.
	n := targets.Shape().Size()
	flatTargets := Reshape(ConvertDType(targets, dtypes.Int32), n)
	idx := Add(MulScalar(Iota(logits.Graph(), flatTargets.Shape(), 0), float64(k)), flatTargets)
	picked := Gather(Reshape(logits, n*k), InsertAxes(idx, -1))
	return Sub(lse, Reshape(picked, targets.Shape().Dimensions...))
}

// stockLogSumExp is log Σ exp over the last axis through GoMLX's
// LogSoftmax and its gradient (for tests that compare with GoMLX).
func stockLogSumExp(x *Node) *Node {
	return Sub(Squeeze(SliceAxis(x, -1, AxisElem(0)), -1), Squeeze(SliceAxis(LogSoftmax(x, -1), -1, AxisElem(0)), -1))
}
