package lora

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// At initialisation B = 0, so the adapted model computes exactly the base's outputs.
func TestInitIdenticalToBase(t *testing.T) {
	sc := newCtx(t)
	base := logits(t, sc, nil)
	m := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 3, Targets: []string{AllLinear, "head/*"}}})
	adapted := logits(t, sc, m)
	if !bitIdentical(base, adapted) {
		t.Fatalf("outputs at init differ from the base by %g", maxAbsDiff(base, adapted))
	}
	res, _ := m.Resolution("lora")
	for _, s := range res.Sites {
		scope := "/adapters/lora/" + s.Name
		a, b := values(t, variable(t, sc, scope, VarA)), values(t, variable(t, sc, scope, VarB))
		if len(a) != s.In*3 || len(b) != 3*s.Out {
			t.Fatalf("%s: A has %d values, B %d", s.Name, len(a), len(b))
		}
		for _, v := range b {
			if v != 0 {
				t.Fatalf("%s: B is not zero at init", s.Name)
			}
		}
		// Kaiming-uniform with a=√5: uniform in ±1/√in, so |A| < bound and
		// the largest |A| is close to it.
		bound := 1 / math.Sqrt(float64(s.In))
		big := 0.0
		for _, v := range a {
			big = max(big, math.Abs(float64(v)))
		}
		if big > bound || big < 0.5*bound {
			t.Errorf("%s: max |A| = %g, want in (%g, %g]", s.Name, big, 0.5*bound, bound)
		}
	}
	// A planted difference is caught: with B random, the outputs move.
	randomize(t, sc, "/adapters/lora", VarB, 0.5, 1)
	if d := maxAbsDiff(base, logits(t, sc, m)); d < 1e-3 {
		t.Fatalf("with B random the outputs moved only %g", d)
	}
}

// oneSite is a layout with a single Linear site "proj" of shape [5, 3].
func oneSite() (site.Layout, site.Site) {
	s := site.Site{Name: "proj", Kind: site.Linear, In: 5, Out: 3}
	return site.Layout{Model: "one", Width: 5, Sites: []site.Site{s},
		Params: []site.Param{{Name: "/proj/weights", Shape: []int{5, 3}}, {Name: "/proj/biases", Shape: []int{3}}}}, s
}

// TestFormula compares one adapted Linear site with h = x·W + b + scale·x·A·B
// computed on the host, for α/r and α/√r, with a rank-3 input.
func TestFormula(t *testing.T) {
	l, s := oneSite()
	r := rand.New(rand.NewPCG(3, 4))
	randn := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	const rank = 2
	x, w, b, a, bb := randn(2*3*5), randn(5*3), randn(3), randn(5*rank), randn(rank*3)
	for _, cfg := range []Config{{Rank: rank, Alpha: 3, Targets: []string{"proj"}}, {Rank: rank, Alpha: 3, RSLoRA: true, Targets: []string{"proj"}}} {
		sc := newCtx(t)
		m := mustModel(t, l, peft.Adapter{Name: "x", Method: cfg})
		set := func(scope, name string, vals []float32, dims ...int) {
			sc.Store().Scope(scope).VariableWithValue(name, tensors.FromFlatDataAndDimensions(vals, dims...))
		}
		set("/proj", "weights", w, 5, 3)
		set("/proj", "biases", b, 3)
		set("/adapters/x/proj", VarA, a, 5, rank)
		set("/adapters/x/proj", VarB, bb, rank, 3)
		exec, err := mlmodel.NewExec(newBackend(t), sc.Store(), func(sc *mlmodel.Scope, x *Node) *Node {
			return model.Linear(sc, m, s, x)
		})
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Exec1(tensors.FromFlatDataAndDimensions(x, 2, 3, 5))
		if err != nil {
			t.Fatal(err)
		}
		exec.Finalize()
		if got := out.Shape().Dimensions; len(got) != 3 || got[0] != 2 || got[1] != 3 || got[2] != 3 {
			t.Fatalf("output shape %v, want [2 3 3]", got)
		}
		got := tensors.MustCopyFlatData[float32](out)
		scale := 3.0 / rank
		if cfg.RSLoRA {
			scale = 3.0 / math.Sqrt(rank)
		}
		for row := range 6 {
			for j := range 3 {
				want := float64(b[j])
				for i := range 5 {
					want += float64(x[row*5+i]) * float64(w[i*3+j])
					xa := 0.0
					for k := range rank {
						xa += float64(a[i*rank+k]) * float64(bb[k*3+j])
					}
					want += scale * float64(x[row*5+i]) * xa
				}
				if d := math.Abs(float64(got[row*3+j]) - want); d > 1e-5*(1+math.Abs(want)) {
					t.Errorf("rsLoRA=%v: h[%d,%d] = %g, want %g", cfg.RSLoRA, row, j, got[row*3+j], want)
				}
			}
		}
	}
}

// Dropout acts in training graphs only: an inference graph with dropout 0.5
// gives exactly the outputs of the same weights without dropout.
func TestDropoutOnlyInTraining(t *testing.T) {
	sc := newCtx(t)
	plain := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 4}})
	drop := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 4, Dropout: 0.5}})
	_ = logits(t, sc, plain)
	randomize(t, sc, "/adapters/lora", VarB, 0.5, 2)
	want := logits(t, sc, plain)
	if got := logits(t, sc, drop); !bitIdentical(got, want) {
		t.Errorf("inference with dropout 0.5 differs from no dropout by %g", maxAbsDiff(got, want))
	}
	// In training, dropout changes the update path (and only it: without
	// dropout the training graph matches inference).
	trainPlain := trainingLogits(t, sc, plain)
	if d := maxAbsDiff(trainPlain, want[:len(trainPlain)]); d > 1e-6 {
		t.Errorf("training graph without dropout differs from inference by %g", d)
	}
	if d := maxAbsDiff(trainingLogits(t, sc, drop), trainPlain); d < 1e-4 {
		t.Errorf("training with dropout 0.5 changed the outputs by only %g", d)
	}
}
