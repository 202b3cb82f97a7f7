package main

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/model"
)

// A benchModel is one of the reference models: a base shape and the batch a
// training step sees. Weights are random (seeded): speed does not depend on
// their values.
type benchModel struct {
	Config model.Config `json:"model"`
	Batch  int          `json:"batch"`
	// Seq is the number of text tokens per example (the model's MaxLen).
	Seq int `json:"seq"`
	// What says where the shape comes from, for the table's legend.
	What string `json:"-"`
}

// Row kinds: one training step with each method, or the forward pass alone.
const (
	rowFT      = "ft"
	rowLoRA    = "lora"
	rowAdaLink = "adalink"
	rowForward = "forward"
	rowMatmul  = "matmul"
)

var rowNames = map[string]string{
	rowFT: "FT", rowLoRA: "LoRA q,v r=8", rowAdaLink: "AdaLink r=8", rowForward: "forward", rowMatmul: "matmul",
}

// benchRank is the rank of the LoRA and AdaLink rows.
const benchRank = 8

// loraTargets are the LoRA rows' sites in every block (HF PEFT's default for
// attention: query and value).
var loraTargets = []string{"block/*/attn/q", "block/*/attn/v"}

// models are the reference models, in table order. The shipped bases'
// shapes are copied from pkg/bases/<name>/config.json (a test keeps them in
// step) with the batch their pretraining used.
var models = []benchModel{
	{Config: model.Config{Name: "bench-lm", Vocab: 256, Width: 64, Heads: 4, Blocks: 2, MLPDim: 256, MaxLen: 128},
		Batch: 8, Seq: 128, What: "the project's step benchmark: V=256, d=64, 2 blocks, 4 heads, MLP 256, 8×128 tokens"},
	{Config: model.Config{Name: "text", Vocab: 2048, Width: 64, Heads: 4, Blocks: 3, MLPDim: 256, MaxLen: 128, EndToken: 3},
		Batch: 16, Seq: 128, What: "the shipped `text` base: V=2048, d=64, 3 blocks, 16×128 tokens"},
	{Config: model.Config{Name: "wide", Vocab: 256, Width: 256, Heads: 8, Blocks: 4, MLPDim: 1024, MaxLen: 128},
		Batch: 16, Seq: 128, What: "wider: d=256, 4 blocks, 8 heads, MLP 1024, 16×128 tokens"},
	{Config: model.Config{Name: "vlm-instruct", Vocab: 2048, Width: 64, Heads: 4, Blocks: 3, MLPDim: 256, MaxLen: 48,
		ImageSize: 32, PatchSize: 8, Channels: 3, EndToken: 3},
		Batch: 32, Seq: 48, What: "the shipped `vlm-instruct` base: 16 image patches + 48 tokens, 32 examples"},
}

func findModel(name string) (benchModel, error) {
	for _, m := range models {
		if m.Config.Name == name {
			return m, nil
		}
	}
	var names []string
	for _, m := range models {
		names = append(names, m.Config.Name)
	}
	return benchModel{}, fmt.Errorf("unknown model %q (known: %v)", name, names)
}

// Weights is the number of base weights.
func (m benchModel) Weights() int {
	n := 0
	for _, p := range m.Config.Layout().Params {
		n += p.Size()
	}
	return n
}

// Tokens is the number of sequence positions a step processes (text tokens
// and image patches), the unit of tokens/s.
func (m benchModel) Tokens() int { return m.Batch * (m.Seq + m.Config.Patches()) }

// ForwardFLOPs counts the floating-point operations of one forward pass as
// 2·m·n·k for every matrix product (projections, MLP, attention logits and
// weights·values, patch embedding, LM head); element-wise work is not
// counted. A training step is counted as 3× the forward (the backward pass
// computes input and weight gradients of every product) and a step on a
// frozen base (LoRA, AdaLink) as 2× (input gradients only); the adapters'
// own products are too small to count. Both sides get the same count, so
// GFLOP/s compares like with like.
func (m benchModel) ForwardFLOPs() float64 {
	c := m.Config
	d, s := float64(c.Width), float64(m.Seq+c.Patches())
	perPos := float64(c.Blocks) * (8*d*d + 4*d*float64(c.MLPDim) + 4*s*d)
	f := float64(m.Batch) * s * perPos
	f += float64(m.Batch*m.Seq) * 2 * d * float64(c.Vocab)
	f += float64(m.Batch*c.Patches()) * 2 * float64(c.PatchDim()) * d
	return f
}

// StepFLOPs is the FLOP count of one step of the row (see ForwardFLOPs).
func (m benchModel) StepFLOPs(row string) float64 {
	switch row {
	case rowFT:
		return 3 * m.ForwardFLOPs()
	case rowLoRA, rowAdaLink:
		return 2 * m.ForwardFLOPs()
	}
	return m.ForwardFLOPs()
}
