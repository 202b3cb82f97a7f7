package model_test

import (
	"fmt"

	"github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
)

// Build a tiny multimodal model, look at its sites, and get logits for a
// batch of images with captions, then continue the captions greedily.
func Example() {
	c := model.Config{
		Name:  "tiny",
		Vocab: 20, Width: 16, Heads: 2, Blocks: 2, MLPDim: 32, MaxLen: 10,
		ImageSize: 8, PatchSize: 4, Channels: 1, // 4 patches per image
		Classes: 3,
	}
	if err := c.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	l := c.Layout()
	fmt.Printf("%s: %d sites, %d weights, %d parameters\n", l.Model, len(l.Sites), len(l.Params), l.NumParams())
	qv, _ := l.Select("block/*/attn/{q,v}")
	fmt.Println("LoRA targets:", qv[0].Name, qv[1].Name, qv[2].Name, qv[3].Name)

	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	scope := mlmodel.NewStore().RootScope()
	_ = scope.Store().SetRNGStateFromSeed(1) // reproducible initial weights

	tokens := [][]int32{{1, 5, 6, 0}, {1, 7, 0, 0}} // id 0 pads
	images := make([][][][]float32, 2)
	for i := range images {
		images[i] = make([][][]float32, 8)
		for y := range images[i] {
			images[i][y] = make([][]float32, 8)
			for x := range images[i][y] {
				images[i][y][x] = []float32{float32(x+y) / 16}
			}
		}
	}
	exec, err := mlmodel.NewExec(b, scope.Store(), func(scope *mlmodel.Scope, tokens, images *graph.Node) (*graph.Node, *graph.Node) {
		in := model.Inputs{Tokens: tokens, Images: images}
		// A nil hook is the base model; pass a *peft.Model to add adapters.
		return model.LMLogits(scope, c, nil, in), model.Classify(scope, c, nil, in)
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	lm, cls, err := exec.Exec2(tokens, images)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("LM logits:", lm.Shape())
	fmt.Println("class logits:", cls.Shape())

	captions, err := model.Generate(b, scope, c, nil, [][]int32{{1, 5, 6}, {1, 7}}, nil, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("new tokens per prompt:", len(captions[0]), len(captions[1]))
	// Output:
	// tiny: 17 sites, 43 weights, 5719 parameters
	// LoRA targets: block/0/attn/q block/0/attn/v block/1/attn/q block/1/attn/v
	// LM logits: (Float32)[2, 4, 20]
	// class logits: (Float32)[2, 3]
	// new tokens per prompt: 3 3
}
