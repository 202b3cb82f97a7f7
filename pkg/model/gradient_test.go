package model

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// TestTrainingGradientsMatchStock checks peftlab's hand-written backward
// passes (the attention softmax's Jacobian, the loss's log-normalizer)
// against GoMLX's own gradients: the same multimodal model, weights and
// batch, once with the model's ops and once with GoMLX's wrappers
// (stockOps). Every weight's gradient must agree to float32 precision.
func TestTrainingGradientsMatchStock(t *testing.T) {
	c := Config{Vocab: 20, Width: 16, Heads: 2, Blocks: 2, MLPDim: 32, MaxLen: 8,
		ImageSize: 8, PatchSize: 4, Channels: 3}
	r := rand.New(rand.NewPCG(5, 6))
	tokens := [][]int32{{1, 5, 7, 2, 0, 0}, {3, 9, 11, 13, 17, 19}}
	weights := [][]float32{{1, 1, 1, 0, 0, 0}, {1, 1, 1, 1, 1, 0}}
	images := randImages(r, 2, c)
	scope := newCtx(t)
	grads := func(stock bool) [][]float32 {
		stockOps = stock
		defer func() { stockOps = false }()
		exec, err := mlmodel.NewExec(newBackend(t), scope.Store(), func(scope *mlmodel.Scope, tok, img, w *Node) []*Node {
			scope.Store().SetTraining(tok.Graph(), true)
			loss := nextTokenLoss(LMLogits(scope, c, nil, Inputs{Tokens: tok, Images: img}), tok, w)
			return scope.BuildTrainableVariablesGradientsGraph(loss)
		})
		if err != nil {
			t.Fatal(err)
		}
		defer exec.Finalize()
		outs, err := exec.Call(tokens, images, weights)
		if err != nil {
			t.Fatal(err)
		}
		var all [][]float32
		for _, o := range outs {
			all = append(all, tensors.MustCopyFlatData[float32](o))
		}
		return all
	}
	stock, ours := grads(true), grads(false)
	if len(stock) != len(ours) || len(ours) == 0 {
		t.Fatalf("%d gradients vs %d", len(ours), len(stock))
	}
	for i := range stock {
		scale := 0.0
		for _, v := range stock[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
		if d := maxDiff(ours[i], stock[i]); d > 1e-5*(1+scale) {
			t.Errorf("gradient %d: max difference %g (largest entry %g)", i, d, scale)
		}
	}
}
