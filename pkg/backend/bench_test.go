package backend_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/peftlab/peftlab/pkg/backend"
)

// The benchmark model: a tiny causal LM (vocab 256, d=64, 4 heads, 2 pre-LN
// blocks, MLP 256), trained on 8 sequences of 128 tokens per step, the size
// of the measurements in the project notes.
const (
	benchVocab, benchWidth, benchHeads, benchBlocks, benchMLP = 256, 64, 4, 2, 256
	benchBatch, benchLen                                      = 8, 128
)

func layerNorm(ctx *context.Context, x *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions[x.Rank()-1]
	gain := ctx.WithInitializer(initializers.One).VariableWithShape("gain", shapes.Make(dtypes.Float32, d)).ValueGraph(g)
	offset := ctx.WithInitializer(initializers.Zero).VariableWithShape("offset", shapes.Make(dtypes.Float32, d)).ValueGraph(g)
	mean := ReduceAndKeep(x, ReduceMean, -1)
	c := Sub(x, mean)
	variance := ReduceAndKeep(Square(c), ReduceMean, -1)
	return Add(Mul(Div(c, Sqrt(AddScalar(variance, 1e-5))), Reshape(gain, 1, 1, d)), Reshape(offset, 1, 1, d))
}

func benchLM(ctx *context.Context, tokens *Node) *Node {
	g := tokens.Graph()
	dh := benchWidth / benchHeads
	x := layers.Embedding(ctx.In("embed"), tokens, dtypes.Float32, benchVocab, benchWidth)
	pos := ctx.In("pos").VariableWithShape("embeddings", shapes.Make(dtypes.Float32, benchLen, benchWidth)).ValueGraph(g)
	x = Add(x, InsertAxes(pos, 0))
	causal := GreaterOrEqual(Iota(g, shapes.Make(dtypes.Int32, benchLen, benchLen), 0), Iota(g, shapes.Make(dtypes.Int32, benchLen, benchLen), 1))
	for i := range benchBlocks {
		bctx := ctx.Inf("block_%d", i)
		h := layerNorm(bctx.In("ln1"), x)
		split := func(name string) *Node {
			y := layers.Dense(bctx.In(name), h, true, benchWidth)
			return Reshape(y, benchBatch, benchLen, benchHeads, dh)
		}
		q, k, v := split("q"), split("k"), split("v")
		logits := MulScalar(Einsum("bthd,bshd->bhts", q, k), 1/math.Sqrt(float64(dh)))
		logits = Where(BroadcastToDims(Reshape(causal, 1, 1, benchLen, benchLen), logits.Shape().Dimensions...), logits, Scalar(g, dtypes.Float32, -1e9))
		att := Einsum("bhts,bshd->bthd", Softmax(logits, -1), v)
		x = Add(x, layers.Dense(bctx.In("o"), Reshape(att, benchBatch, benchLen, benchWidth), true, benchWidth))
		h = layerNorm(bctx.In("ln2"), x)
		h = layers.Dense(bctx.In("up"), h, true, benchMLP)
		x = Add(x, layers.Dense(bctx.In("down"), activations.Gelu(h), true, benchWidth))
	}
	x = layerNorm(ctx.In("final_ln"), x)
	return layers.Dense(ctx.In("head"), x, true, benchVocab)
}

// newBenchTrainer returns a trainer for the benchmark LM and one batch.
func newBenchTrainer(b backends.Backend) (*train.Trainer, []*tensors.Tensor, []*tensors.Tensor) {
	ctx := context.New()
	ctx.SetRNGStateFromSeed(1)
	tr := train.NewTrainer(b, ctx,
		func(ctx *context.Context, _ any, in []*Node) []*Node { return []*Node{benchLM(ctx, in[0])} },
		losses.SparseCategoricalCrossEntropyLogits, optimizers.Adam().LearningRate(1e-3).Done(), nil, nil)
	r := rand.New(rand.NewPCG(5, 6))
	toks := make([]int32, benchBatch*benchLen)
	for i := range toks {
		toks[i] = int32(r.IntN(benchVocab))
	}
	next := append(toks[1:len(toks):len(toks)], 0)
	return tr, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(toks, benchBatch, benchLen)},
		[]*tensors.Tensor{tensors.FromFlatDataAndDimensions(next, benchBatch, benchLen, 1)}
}

// BenchmarkTrainStep times one training step of a small transformer LM with
// GoMLX's stock matrix-product gradients and with peftlab's, under the two
// deadlock-free configurations of the pure-Go backend. The first step
// (graph building and compilation) is excluded.
//
//	go test -run XXX -bench TrainStep -benchtime 5x ./pkg/backend
func BenchmarkTrainStep(b *testing.B) {
	backend.InstallGradients()
	for _, cfg := range []string{"go:ops_sequential", "go:parallelism=-1", "go:ops_sequential,parallelism=-1"} {
		for _, fast := range []bool{true, false} {
			name := "stock"
			if fast {
				name = "fast"
			}
			b.Run(fmt.Sprintf("%s/%s", cfg, name), func(b *testing.B) {
				be, err := backends.NewWithConfig(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer be.Finalize()
				backend.SetFastGradients(fast)
				defer backend.SetFastGradients(true)
				tr, in, labels := newBenchTrainer(be)
				if _, err := tr.TrainStep(nil, in, labels); err != nil { // Builds and compiles the graph.
					b.Fatal(err)
				}
				b.ResetTimer()
				for b.Loop() {
					if _, err := tr.TrainStep(nil, in, labels); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
