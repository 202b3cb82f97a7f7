package prompt_test

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
)

// Prepend 4 soft tokens to a small language model's text, initialised from
// the embeddings of 4 sampled vocabulary tokens. The plan shows the p·d
// weights; the model sees 4 more positions, while LMLogits still returns one
// row per token the caller gave.
func Example() {
	base := model.Config{Name: "tiny", Vocab: 50, Width: 16, Heads: 2, Blocks: 2, MLPDim: 32, MaxLen: 12}
	cfg := prompt.Config{Tokens: 4, Seed: 1}
	m, err := peft.New(base.Layout(), peft.Adapter{Name: "task", Method: cfg})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(m.Plan())

	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	scope := mlmodel.NewStore().RootScope()
	outs := mlmodel.MustExecOnceN(b, scope.Store(), func(scope *mlmodel.Scope, tokens *Node) []*Node {
		hidden, _ := model.Encode(scope, base, m, model.Inputs{Tokens: tokens})
		return []*Node{hidden, model.LMLogits(scope, base, m, model.Inputs{Tokens: tokens})}
	}, [][]int32{{3, 1, 4, 1, 5}})
	fmt.Println("hidden:", outs[0].Shape())
	fmt.Println("logits:", outs[1].Shape())
	fmt.Println("initialised from tokens", prompt.SampleTokens(base.Vocab, cfg.Tokens, cfg.Seed))

	// The soft tokens count against MaxLen: 12 leave no room for text.
	_, err = peft.New(base.Layout(), peft.Adapter{Name: "long", Method: prompt.Config{Tokens: 12}})
	fmt.Println(err)
	// Output:
	// plan for tiny
	// adapter  method         site        weight                            shape   params  trains
	// task     PROMPT_TUNING  input/text  /adapters/task/input/text/prompt  [4 16]  64      yes
	// trainable params: 64 || all params: 6418 || trainable%: 0.9972
	// hidden: (Float32)[1, 9, 16]
	// logits: (Float32)[1, 5, 50]
	// initialised from tokens [15 27 2 19]
	// adapter "long" (PROMPT_TUNING): num_virtual_tokens 12 leaves no room for text: tiny has only 12 positions (MaxLen counts the soft tokens)
}
