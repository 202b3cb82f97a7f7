package lora_test

import (
	"fmt"
	"math"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/lora"
)

// Attach LoRA to the query and value projections of a small model, look at
// the plan before anything is built, and check the trainable-parameter count
// against the closed form r·(in+out) per adapted matrix.
func Example() {
	base := model.Config{Name: "tiny", Vocab: 100, Width: 32, Heads: 4, Blocks: 2, MLPDim: 64, MaxLen: 16}
	m, err := peft.New(base.Layout(), peft.Adapter{
		Name:   "qv",
		Method: lora.Config{Rank: 4, Alpha: 8, Targets: []string{"block/*/attn/{q,v}"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	plan := m.Plan()
	for _, row := range plan.Rows[:2] {
		fmt.Println(row.Param.Name, row.Param.Shape)
	}
	fmt.Println("closed form:", 2*2*4*(32+32)) // blocks · {q,v} · r·(in+out)
	fmt.Println(plan.Summary())

	// Asking for an input site is a configuration error, caught before any graph exists.
	_, err = peft.New(base.Layout(), peft.Adapter{Name: "bad", Method: lora.Config{Targets: []string{"input/text"}}})
	fmt.Println(err)
	// Output:
	// /adapters/qv/block/0/attn/q/lora_A [32 4]
	// /adapters/qv/block/0/attn/q/lora_B [4 32]
	// closed form: 1024
	// trainable params: 1024 || all params: 25252 || trainable%: 4.0551
	// adapter "bad" (LORA): LoRA adapts linear sites; input/text is an input site, use AdaLink or prompt tuning
}

// Merge folds a (trained) adapter into the base weights for inference, and
// Unmerge gives the original weights back, bit for bit. Build a new Exec
// after each: the merged state is read when a graph is built.
func ExampleMerge() {
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	base := model.Config{Name: "tiny", Vocab: 20, Width: 8, Heads: 2, Blocks: 1, MLPDim: 16, MaxLen: 8}
	m, _ := peft.New(base.Layout(), peft.Adapter{Name: "qv", Method: lora.Config{Rank: 2}})
	scope := mlmodel.NewStore().RootScope()
	run := func() []float32 {
		exec, err := mlmodel.NewExec(b, scope.Store(), func(scope *mlmodel.Scope, tokens *Node) *Node {
			return model.LMLogits(scope, base, m, model.Inputs{Tokens: tokens})
		})
		if err != nil {
			panic(err)
		}
		defer exec.Finalize()
		out, err := exec.Exec1([][]int32{{3, 1, 4, 1, 5}})
		if err != nil {
			panic(err)
		}
		return tensors.MustCopyFlatData[float32](out)
	}
	run() // creates the base and adapter weights
	// Pretend the adapter was trained: give B non-zero values.
	bv := scope.Store().GetVariable(mlmodel.JoinPath("/adapters/qv/block/0/attn/q", lora.VarB))
	_ = bv.SetValue(tensors.FromFlatDataAndDimensions([]float32{1, -1, 2, 0, 1, 3, -2, 1, 1, 0, -1, 2, 1, 1, 0, -3}, 2, 8))
	adapted := run()

	if err := lora.Merge(scope, m, "qv"); err != nil {
		fmt.Println(err)
		return
	}
	merged := run()
	diff := 0.0
	for i := range adapted {
		diff = max(diff, math.Abs(float64(adapted[i]-merged[i])))
	}
	fmt.Println("merged and adapted outputs agree within 1e-5:", diff < 1e-5)
	fmt.Println(lora.Merge(scope, m, "qv"))
	fmt.Println("unmerge:", lora.Unmerge(scope, m, "qv"))
	// Output:
	// merged and adapted outputs agree within 1e-5: true
	// lora.Merge: adapter "qv" is already merged
	// unmerge: <nil>
}
