package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// TestNLL compares NLL's values and gradients, in a training graph and in
// a plain one, with the textbook LogSoftmax·OneHot cross-entropy, on
// logits of very different scales (a peaked row must not lose precision).
func TestNLL(t *testing.T) {
	const b, n, k = 3, 5, 37
	r := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, b*n*k)
	for i := range logits {
		scale := []float32{0.1, 3, 40}[i/(n*k)]
		logits[i] = scale * float32(r.NormFloat64())
	}
	targets := make([]int32, b*n)
	for i := range targets {
		targets[i] = int32(r.IntN(k))
	}
	weights := make([]float32, b*n)
	for i := range weights {
		weights[i] = r.Float32()
	}
	x := tensors.FromFlatDataAndDimensions(logits, b, n, k)
	tt := tensors.FromFlatDataAndDimensions(targets, b, n)
	w := tensors.FromFlatDataAndDimensions(weights, b, n)
	run := func(training bool, ours bool) (val, grad []float32) {
		outs, err := mlmodel.ExecOnceN(newBackend(t), mlmodel.NewStore(), func(scope *mlmodel.Scope, x, tg, w *Node) []*Node {
			scope.Store().SetTraining(x.Graph(), training)
			var nll *Node
			if ours {
				nll = NLL(x, tg)
			} else {
				nll = Neg(ReduceSum(Mul(LogSoftmax(x, -1), OneHot(tg, k, dtypes.Float32)), -1))
			}
			loss := ReduceAllSum(Mul(nll, w))
			return []*Node{nll, Gradient(loss, x)[0]}
		}, x, tt, w)
		if err != nil {
			t.Fatal(err)
		}
		return tensors.MustCopyFlatData[float32](outs[0]), tensors.MustCopyFlatData[float32](outs[1])
	}
	wantVal, wantGrad := run(false, false)
	for _, training := range []bool{true, false} {
		val, grad := run(training, true)
		for i := range wantVal {
			if d := math.Abs(float64(val[i] - wantVal[i])); d > 1e-5*(1+math.Abs(float64(wantVal[i]))) {
				t.Fatalf("training=%v: NLL[%d] = %g, LogSoftmax gives %g", training, i, val[i], wantVal[i])
			}
		}
		if d := maxDiff(grad, wantGrad); d > 1e-6 {
			t.Errorf("training=%v: gradients differ by up to %g", training, d)
		}
	}
}
