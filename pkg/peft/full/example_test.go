package full_test

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/full"
)

// Fine-tune the last block and the classification head of a small model:
// the plan lists the base weights that will train, and after a graph build
// exactly those variables are trainable.
func Example() {
	base := model.Config{Name: "tiny", Vocab: 50, Width: 16, Heads: 2, Blocks: 2, MLPDim: 32, MaxLen: 8, Classes: 3}
	cfg := full.Config{Preset: "last:1", Targets: []string{"head/cls"}}
	m, err := peft.New(base.Layout(), peft.Adapter{Name: "ft", Method: cfg})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan := m.Plan()
	fmt.Println(len(plan.Rows), "weights, first", plan.Rows[0].Param.Name, "last", plan.Rows[len(plan.Rows)-1].Param.Name)
	fmt.Println(plan.Summary())

	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	scope := mlmodel.NewStore().RootScope()
	mlmodel.MustExecOnce(b, scope.Store(), func(scope *mlmodel.Scope, tokens *Node) *Node {
		logits := model.Classify(scope, base, m, model.Inputs{Tokens: tokens})
		m.ApplyTrainable(scope) // after every build, as the trainer does
		return logits
	}, [][]int32{{3, 1, 4}})
	trainable := 0
	for v := range scope.IterVariables() {
		if v.Trainable {
			trainable += v.Shape().Size()
		}
	}
	fmt.Println("trainable after the build:", trainable)

	// Presets are checked against the model before anything is built.
	_, err = peft.New(base.Layout(), peft.Adapter{Name: "bad", Method: full.Config{Preset: "last:3"}})
	fmt.Println(err)
	// Output:
	// 18 weights, first /block/1/ln1/gain last /head/cls/biases
	// trainable params: 2275 || all params: 6341 || trainable%: 35.8776
	// trainable after the build: 2275
	// adapter "bad" (FULL): preset "last:3": tiny has only 2 blocks
}
