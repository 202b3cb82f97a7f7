package trainer_test

import (
	"fmt"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Train an AdaLink adapter on a (here untrained) base model to tell which of
// two tokens a sequence starts with.
func Example() {
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	base := model.Config{Vocab: 8, Width: 16, Heads: 2, Blocks: 1, MLPDim: 32, MaxLen: 4, Classes: 2}
	pm, err := peft.New(base.Layout(), peft.Adapter{Name: "task", Method: adalink.Config{Rank: 4}})
	if err != nil {
		fmt.Println(err)
		return
	}
	examples := trainer.Batch{
		Tokens: tensors.FromValue([][]int32{{1, 5, 6, 7}, {2, 5, 6, 7}, {1, 7, 6, 5}, {2, 7, 6, 5}}),
		Labels: tensors.FromValue([]int32{0, 1, 0, 1}),
	}
	data, err := trainer.NewMemory(examples, examples)
	if err != nil {
		fmt.Println(err)
		return
	}
	tr, err := trainer.New(b, mlmodel.NewStore().RootScope(), base, pm, trainer.Config{Steps: 40, BatchSize: 4, LR: 0.05, Seed: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := tr.Run(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	first, last := rec.Evals[0], rec.Evals[len(rec.Evals)-1]
	fmt.Printf("trained %d of %d weights\n", rec.TrainableParams, rec.PlannedTotal)
	fmt.Printf("accuracy %.0f%% -> %.0f%%\n", 100*first.Accuracy, 100*last.Accuracy)
	// Output:
	// trained 128 of 2778 weights
	// accuracy 25% -> 100%
}
