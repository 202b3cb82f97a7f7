package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// newBackend returns the test binary's shared backend (fast gradients installed).
func newBackend(t testing.TB) compute.Backend { return backendtest.Backend(t) }

// tiny is a text model small enough for fast tests, with both heads so that
// every kind of Linear site (d->d, d->MLP, MLP->d, d->classes, d->vocab) exists.
var tiny = model.Config{Name: "tiny", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12, Classes: 3}

var tokens = [][]int32{{1, 5, 7, 2, 9, 0}, {3, 3, 12, 4, 0, 0}}

func newCtx(t testing.TB) *mlmodel.Scope {
	t.Helper()
	sc := mlmodel.NewStore().RootScope()
	if err := sc.Store().SetRNGStateFromSeed(11); err != nil {
		t.Fatal(err)
	}
	return sc
}

func mustModel(t testing.TB, l site.Layout, adapters ...peft.Adapter) *peft.Model {
	t.Helper()
	m, err := peft.New(l, adapters...)
	if err != nil {
		t.Fatalf("peft.New: %v", err)
	}
	return m
}

// logits runs the LM head and the classifier of tiny with hook on sc, in a
// freshly built graph, and returns both outputs flattened and concatenated.
func logits(t testing.TB, sc *mlmodel.Scope, hook site.Hook) []float32 {
	t.Helper()
	exec, err := mlmodel.NewExec(newBackend(t), sc.Store(), func(sc *mlmodel.Scope, tok *Node) (*Node, *Node) {
		in := model.Inputs{Tokens: tok}
		return model.LMLogits(sc, tiny, hook, in), model.Classify(sc, tiny, hook, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	lm, cls, err := exec.Exec2(tensors.FromValue(tokens))
	if err != nil {
		t.Fatal(err)
	}
	return append(tensors.MustCopyFlatData[float32](lm), tensors.MustCopyFlatData[float32](cls)...)
}

// trainingLogits is logits with the graph marked as training (dropout on).
func trainingLogits(t testing.TB, sc *mlmodel.Scope, hook site.Hook) []float32 {
	t.Helper()
	exec, err := mlmodel.NewExec(newBackend(t), sc.Store(), func(sc *mlmodel.Scope, tok *Node) *Node {
		sc.Store().SetTraining(tok.Graph(), true)
		return model.LMLogits(sc, tiny, hook, model.Inputs{Tokens: tok})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer exec.Finalize()
	lm, err := exec.Exec1(tensors.FromValue(tokens))
	if err != nil {
		t.Fatal(err)
	}
	return tensors.MustCopyFlatData[float32](lm)
}

func variable(t testing.TB, sc *mlmodel.Scope, scope, name string) *mlmodel.Variable {
	t.Helper()
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	if v == nil {
		t.Fatalf("variable %s/%s does not exist", scope, name)
	}
	return v
}

func values(t testing.TB, v *mlmodel.Variable) []float32 {
	t.Helper()
	return tensors.MustCopyFlatData[float32](v.MustValue())
}

// randomize sets every variable named name below scope to N(0, std²) values.
func randomize(t testing.TB, sc *mlmodel.Scope, scope, name string, std float64, seed uint64) int {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	n := 0
	for v := range sc.IterVariables() {
		if v.Name() != name || len(v.Scope()) < len(scope) || v.Scope()[:len(scope)] != scope {
			continue
		}
		vals := make([]float32, v.Shape().Size())
		for i := range vals {
			vals[i] = float32(r.NormFloat64() * std)
		}
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n == 0 {
		t.Fatalf("no variable %q below %s", name, scope)
	}
	return n
}

// snapshot copies the values of every variable outside "/adapters".
func snapshot(t testing.TB, sc *mlmodel.Scope) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for v := range sc.IterVariables() {
		if len(v.Scope()) >= len(peft.AdapterScope) && v.Scope()[:len(peft.AdapterScope)] == peft.AdapterScope {
			continue
		}
		if v.DType().IsFloat() {
			out[v.Path()] = values(t, v)
		}
	}
	return out
}

func maxAbsDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		m = max(m, math.Abs(float64(a[i])-float64(b[i])))
	}
	return m
}

func bitIdentical(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}
