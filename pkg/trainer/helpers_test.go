package trainer

import (
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
)

// testBackend returns the test binary's shared backend (fast gradients installed).
func testBackend(t testing.TB) compute.Backend { return backendtest.Backend(t) }

// tiny is the base model of the tests: text only, 2 classes, room for 4
// prompt tokens in front of 7 text tokens.
var tiny = model.Config{Name: "tiny", Vocab: 16, Width: 16, Heads: 2, Blocks: 1, MLPDim: 32, MaxLen: 12, Classes: 2}

const seqLen = 7

// majorityData returns n sequences of seqLen tokens in [1, 16) labelled 1
// when most of their tokens are below 8: a task every method can learn on a
// random frozen base.
func majorityData(seed uint64, n int) Batch {
	r := rand.New(rand.NewPCG(seed, 99))
	toks := make([]int32, 0, n*seqLen)
	labels := make([]int32, n)
	for i := range n {
		low := 0
		for range seqLen {
			v := int32(1 + r.IntN(15))
			if v < 8 {
				low++
			}
			toks = append(toks, v)
		}
		if 2*low > seqLen {
			labels[i] = 1
		}
	}
	return Batch{Tokens: tensors.FromFlatDataAndDimensions(toks, n, seqLen), Labels: tensors.FromFlatDataAndDimensions(labels, n)}
}

func majoritySource(t testing.TB) *Memory {
	t.Helper()
	m, err := NewMemory(majorityData(1, 256), majorityData(2, 128))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newBase returns a context holding a freshly initialised base (the same
// weights for the same seed), as if loaded from a checkpoint.
func newBase(t testing.TB, c model.Config, seed int64) *mlmodel.Scope {
	t.Helper()
	sc := mlmodel.NewStore().RootScope()
	if err := sc.Store().SetRNGStateFromSeed(seed); err != nil {
		t.Fatal(err)
	}
	// Evaluating the base once creates and initialises its weights.
	tr, err := New(testBackend(t), sc, c, nil, Config{Steps: 1, BatchSize: 2, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Evaluate([]Batch{majorityData(3, 2)}); err != nil {
		t.Fatal(err)
	}
	return sc
}

// snapshot copies every variable's value, by scope-and-name.
func snapshot(sc *mlmodel.Scope) map[string][]float32 {
	out := map[string][]float32{}
	for v := range sc.IterVariables() {
		if v.DType() != dtypes.Float32 {
			continue
		}
		out[v.Path()] = tensors.MustCopyFlatData[float32](v.MustValue())
	}
	return out
}

func mustPeft(t testing.TB, c model.Config, adapters ...peft.Adapter) *peft.Model {
	t.Helper()
	m, err := peft.New(c.Layout(), adapters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
