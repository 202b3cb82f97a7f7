package peft_test

import (
	"fmt"
	"os"
	"strings"

	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
)

// Save an AdaLink adapter alone, then load it back onto the same base and
// see it refused by a different one.
func ExampleSaveAdapter() {
	base := model.Config{Name: "tiny", Vocab: 20, Width: 8, Heads: 2, Blocks: 1, MLPDim: 16, MaxLen: 8, Classes: 2}
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	newBase := func(seed int64) *mlmodel.Scope {
		scope := mlmodel.NewStore().RootScope()
		_ = scope.Store().SetRNGStateFromSeed(seed)
		if err := model.Init(b, scope, base); err != nil {
			panic(err)
		}
		return scope
	}
	scope := newBase(1)
	m, err := peft.New(base.Layout(), peft.Adapter{Name: "sentiment", Method: adalink.Config{Rank: 2}})
	if err != nil {
		fmt.Println(err)
		return
	}
	// Building the adapted model once creates the adapter's weights (training does too).
	mlmodel.MustExecOnce(b, scope.Store(), func(scope *mlmodel.Scope, tokens *Node) *Node {
		return model.Classify(scope, base, m, model.Inputs{Tokens: tokens})
	}, [][]int32{{3, 1, 4}})

	dir, _ := os.MkdirTemp("", "adapter")
	defer os.RemoveAll(dir)
	if err := peft.SaveAdapter(dir, scope, m, "sentiment"); err != nil {
		fmt.Println(err)
		return
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		fmt.Println(e.Name())
	}
	cfg, _ := peft.ReadAdapterConfig(dir)
	fmt.Println(cfg.Name, cfg.Method.Type(), cfg.BaseModel)

	a, err := peft.LoadAdapter(dir, newBase(1), base.Layout()) // the same base weights
	fmt.Println(a.Name, a.Method, "frozen:", a.Frozen, err)

	_, err = peft.LoadAdapter(dir, newBase(2), base.Layout()) // other weights, same shapes
	fmt.Println(strings.Contains(err.Error(), "load the base model the adapter was trained on"))
	// Output:
	// adapter_config.json
	// adapter_model.safetensors
	// sentiment ADALINK tiny
	// sentiment AdaLink(r=2, all modalities) frozen: true <nil>
	// true
}
