package model

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
)

// NLL returns the negative log-likelihood of the targets under the logits,
// -log softmax(logits)[target], one value per target: logits are [..., K]
// and targets [...] Int32 in [0, K). It is the cross-entropy of every
// peftlab objective (next token, class), written for the pure-Go backend:
//
//   - the log-normalizer comes from the backend's fused softmax s (float32
//     Exp) as x[j] - log(s[j]) at the row's largest logit j = argmax(x):
//     exact up to rounding for any j, and s[j] >= 1/K cannot underflow. One
//     ArgMax and two Gathers instead of ReduceMax over the logits and over s,
//     which the Go backend runs through a per-element iterator (on the text
//     base's [2048, 2048] logits the two took 40% of the loss);
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
	n := targets.Shape().Size()
	// at picks one element per row: x[row, idx[row]] through the flat index row·K + idx.
	rows := MulScalar(Iota(logits.Graph(), shapes.Make(dtypes.Int32, n), 0), float64(k))
	at := func(x, idx *Node) *Node {
		picked := Gather(Reshape(x, n*k), InsertAxes(Add(rows, Reshape(idx, n)), -1))
		return Reshape(picked, targets.Shape().Dimensions...)
	}
	var lse *Node
	if stockOps {
		lse = stockLogSumExp(logits)
	} else {
		s := fusedSoftmax(logits)
		j := ArgMax(logits, -1, dtypes.Int32)
		lse = withGradient(Sub(at(logits, j), Log(at(s, j))), logits, func(v *Node) *Node {
			return Mul(s, v)
		})
	}
	return Sub(lse, at(logits, ConvertDType(targets, dtypes.Int32)))
}

// stockLogSumExp is log Σ exp over the last axis through GoMLX's
// LogSoftmax and its gradient (for tests that compare with GoMLX).
func stockLogSumExp(x *Node) *Node {
	return Sub(Squeeze(SliceAxis(x, -1, AxisElem(0)), -1), Squeeze(SliceAxis(LogSoftmax(x, -1), -1, AxisElem(0)), -1))
}
