package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
)

// benchBase is a small causal LM: 231K weights; a step sees 8×128 tokens.
var benchBase = model.Config{Name: "bench-lm", Vocab: 256, Width: 64, Heads: 4, Blocks: 2, MLPDim: 256, MaxLen: 136}

func benchBatch() Batch {
	const b, T = 8, 128
	r := rand.New(rand.NewPCG(1, 2))
	toks := make([]int32, b*T)
	for i := range toks {
		toks[i] = int32(1 + r.IntN(benchBase.Vocab-1))
	}
	targets := append(toks[1:len(toks):len(toks)], 1)
	return Batch{Tokens: tensors.FromFlatDataAndDimensions(toks, b, T), Targets: tensors.FromFlatDataAndDimensions(targets, b, T)}
}

// BenchmarkStep times one training step (forward, backward, AdamW update) of
// the same small LM with each method. The first step,
// which builds and compiles the graph, is not timed.
//
//	go test -run XXX -bench Step -benchtime 5x ./pkg/trainer
func BenchmarkStep(b *testing.B) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	batch := benchBatch()
	for _, mc := range []struct {
		name   string
		method peft.Method
	}{
		{"FT", full.Config{}},
		{"LoRA", lora.Config{Rank: 4}},
		{"AdaLink", adalink.Config{Rank: 4}},
		{"Prompt", prompt.Config{Tokens: 8}},
	} {
		b.Run(mc.name, func(b *testing.B) {
			m, err := peft.New(benchBase.Layout(), peft.Adapter{Name: "a", Method: mc.method})
			if err != nil {
				b.Fatal(err)
			}
			tr, err := New(be, mlmodel.NewStore().RootScope(), benchBase, m, Config{Steps: 1 << 30, BatchSize: 8, LR: 1e-3})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tr.Step(batch); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := tr.Step(batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
