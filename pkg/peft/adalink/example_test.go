package adalink_test

import (
	"fmt"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
)

// Attach AdaLink to both inputs of a small multimodal model, read the plan
// (2·d·r weights per modality), and run the adapted model: at init it
// computes exactly what the base computes, because B starts at zero.
func Example() {
	base := model.Config{Name: "tiny", Vocab: 50, Width: 16, Heads: 2, Blocks: 2, MLPDim: 32, MaxLen: 8,
		ImageSize: 8, PatchSize: 4, Channels: 3}
	m, err := peft.New(base.Layout(), peft.Adapter{Name: "vqa", Method: adalink.Config{Rank: 4}})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan := m.Plan()
	for _, row := range plan.Rows {
		fmt.Println(row.Site, row.Param.Name, row.Param.Shape)
	}
	fmt.Println("closed form:", 2*2*16*4) // modalities · 2·d·r
	fmt.Println(plan.Summary())

	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	scope := mlmodel.NewStore().RootScope()
	images := tensors.FromShape(shapes.Make(dtypes.Float32, 1, 8, 8, 3)) // one black 8×8 RGB image
	logits := func(hook *peft.Model) []float32 {
		out := mlmodel.MustExecOnce(b, scope.Store(), func(scope *mlmodel.Scope, tokens, images *Node) *Node {
			return model.LMLogits(scope, base, hook, model.Inputs{Tokens: tokens, Images: images})
		}, [][]int32{{3, 1, 4, 1, 5}}, images)
		return tensors.MustCopyFlatData[float32](out)
	}
	before := logits(nil) // the base alone
	after := logits(m)    // the same base with AdaLink attached
	fmt.Println("identical at init:", slices.Equal(before, after))

	// A modality the base lacks is an error that lists the ones it has.
	_, err = peft.New(base.Layout(), peft.Adapter{Name: "bad", Method: adalink.Config{Rank: 4, Modalities: []string{"audio"}}})
	fmt.Println(err)
	// Output:
	// input/text /adapters/vqa/input/text/A [16 4]
	// input/text /adapters/vqa/input/text/B [4 16]
	// input/image /adapters/vqa/input/image/A [16 4]
	// input/image /adapters/vqa/input/image/B [4 16]
	// closed form: 256
	// trainable params: 256 || all params: 7394 || trainable%: 3.4623
	// identical at init: true
	// adapter "bad" (ADALINK): base model tiny has no "audio" modality; it has: text, image
}
