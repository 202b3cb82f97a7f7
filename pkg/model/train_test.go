package model

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train/optimizer"
)

// copyBatch returns n sequences [BOS a b c SEP a b c] and the loss weights:
// 1 at the positions that predict the second copy.
func copyBatch(r *rand.Rand, n, k, vocab int) (tokens [][]int32, weights [][]float32) {
	const bos, sep = 1, 2
	for range n {
		seq := []int32{bos}
		for range k {
			seq = append(seq, int32(3+r.IntN(vocab-3)))
		}
		seq = append(seq, sep)
		seq = append(seq, seq[1:1+k]...)
		w := make([]float32, len(seq))
		for p := k + 1; p < len(seq)-1; p++ { // position p predicts token p+1
			w[p] = 1
		}
		tokens, weights = append(tokens, seq), append(weights, w)
	}
	return tokens, weights
}

// nextTokenLoss is the weighted mean cross-entropy of predicting token t+1
// at position t. Targets are gathered with OneHot, not Slice.
func nextTokenLoss(logits, tokens, weights *Node) *Node {
	b, t, v := logits.Shape().Dimensions[0], logits.Shape().Dimensions[1], logits.Shape().Dimensions[2]
	// targets[:, p] = tokens[:, p+1], the last one padded with 0 (weight 0 there).
	next := LastPositions(InsertAxes(tokens, -1), t-1)
	next = Concatenate([]*Node{Reshape(next, b, t-1), Zeros(tokens.Graph(), shapes.Make(tokens.DType(), b, 1))}, 1)
	logp := LogSoftmax(logits, -1)
	picked := ReduceSum(Mul(logp, OneHot(next, v, dtypes.Float32)), -1)
	return Div(Neg(ReduceAllSum(Mul(picked, weights))), ReduceAllSum(weights))
}

// TestTrainsOnCopy trains a tiny model a few dozen Adam steps on copying
// a 3-token sequence and checks that the loss falls clearly.
func TestTrainsOnCopy(t *testing.T) {
	c := Config{Vocab: 8, Width: 16, Heads: 2, Blocks: 1, MLPDim: 32, MaxLen: 8}
	r := rand.New(rand.NewPCG(19, 20))
	tokens, weights := copyBatch(r, 32, 3, c.Vocab)
	scope := newCtx(t)
	opt := optimizer.Adam().LearningRate(0.02).Done()
	step, err := mlmodel.NewExec(newBackend(t), scope.Store(), func(scope *mlmodel.Scope, tok, w *Node) *Node {
		loss := nextTokenLoss(LMLogits(scope, c, nil, Inputs{Tokens: tok}), tok, w)
		opt.UpdateGraph(scope, tok.Graph(), loss)
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	defer step.Finalize()
	const steps = 60
	var first, last float32
	for i := range steps {
		out, err := step.Exec1(tokens, weights)
		if err != nil {
			t.Fatal(err)
		}
		loss := out.Value().(float32)
		if i == 0 {
			first = loss
		}
		last = loss
	}
	t.Logf("copy task loss: %.3f -> %.3f after %d steps", first, last, steps)
	// Without copying, the best a model can do on the 5 content tokens is
	// ln 5 ≈ 1.61 nats; clearly below that means it learned to copy.
	if !(last < 1.2 && last < 0.5*first) {
		t.Errorf("loss fell from %.3f only to %.3f in %d steps, want below 1.2 (ln 5 = 1.61 without copying)", first, last, steps)
	}
}

// TestEveryWeightTrains takes one Adam step on a multimodal loss (class and
// LM heads, with a hook that prepends tokens, so LMLogits drops positions
// on the differentiated path) and checks that every base weight moved.
func TestEveryWeightTrains(t *testing.T) {
	c := mmCfg
	r := rand.New(rand.NewPCG(21, 22))
	scope := newCtx(t)
	tokens := [][]int32{{1, 5, 6, 7}, {1, 8, 0, 0}}
	weights := [][]float32{{1, 1, 1, 0}, {1, 0, 0, 0}}
	images := randImages(r, 2, c)
	hook := &recorder{prepend: 2}
	opt := optimizer.Adam().LearningRate(0.01).Done()
	step, err := mlmodel.NewExec(newBackend(t), scope.Store(), func(scope *mlmodel.Scope, tok, w, img *Node) *Node {
		in := Inputs{Tokens: tok, Images: img}
		loss := nextTokenLoss(LMLogits(scope, c, hook, in), tok, w)
		loss = Add(loss, ReduceAllMean(Square(Classify(scope, c, hook, in))))
		opt.UpdateGraph(scope, tok.Graph(), loss)
		return loss
	})
	if err != nil {
		t.Fatal(err)
	}
	defer step.Finalize()
	if _, err := step.Exec1(tokens, weights, images); err != nil { // creates and initialises the variables
		t.Fatal(err)
	}
	before := map[string][]float32{}
	for _, p := range c.Layout().Params {
		v := scope.Store().GetVariable(p.Name)
		if v == nil {
			t.Fatalf("no variable %s", p.Name)
		}
		before[p.Name] = flat(v.MustValue())
	}
	if _, err := step.Exec1(tokens, weights, images); err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Layout().Params {
		after := flat(scope.Store().GetVariable(p.Name).MustValue())
		if maxDiff(before[p.Name], after) == 0 {
			t.Errorf("%s did not change in a training step", p.Name)
		}
	}
}

// BenchmarkTrainStep times one Adam step of a small causal LM (d=64, 2
// blocks, 16×64 = 1024 tokens per step), the size used in the GoMLX notes.
func BenchmarkTrainStep(b *testing.B) {
	c := Config{Vocab: 256, Width: 64, Heads: 4, Blocks: 2, MLPDim: 256, MaxLen: 64}
	r := rand.New(rand.NewPCG(25, 26))
	tokens := make([][]int32, 16)
	weights := make([][]float32, 16)
	for i := range tokens {
		tokens[i] = make([]int32, 64)
		weights[i] = make([]float32, 64)
		for p := range tokens[i] {
			tokens[i][p] = int32(1 + r.IntN(c.Vocab-1))
			weights[i][p] = 1
		}
		weights[i][63] = 0
	}
	scope := newCtx(b)
	opt := optimizer.Adam().LearningRate(1e-3).Done()
	step, err := mlmodel.NewExec(newBackend(b), scope.Store(), func(scope *mlmodel.Scope, tok, w *Node) *Node {
		loss := nextTokenLoss(LMLogits(scope, c, nil, Inputs{Tokens: tok}), tok, w)
		opt.UpdateGraph(scope, tok.Graph(), loss)
		return loss
	})
	if err != nil {
		b.Fatal(err)
	}
	defer step.Finalize()
	if _, err := step.Exec1(tokens, weights); err != nil { // compile
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := step.Exec1(tokens, weights); err != nil {
			b.Fatal(err)
		}
	}
}
