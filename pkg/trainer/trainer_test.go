package trainer

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/site"
)

// methods are the adapters the tests train, one per method.
var methods = []struct {
	name   string
	method peft.Method
	lr     float64
}{
	{"FT", full.Config{}, 3e-3},
	{"LoRA", lora.Config{Rank: 4, Alpha: 4, Targets: []string{"block/*/attn/{q,v}", "block/*/mlp/*"}}, 3e-2}, // α = r: scale 1
	{"AdaLink", adalink.Config{Rank: 4}, 1e-2},
	{"Prompt", prompt.Config{Tokens: 4, Seed: 1}, 3e-2},
}

// TestMethodsLearnAndTouchOnlyTheirWeights trains each method on the
// majority task from a random frozen base and checks that (1) the evaluation
// loss falls clearly below where it started, (2) every base weight the method
// does not own is bit-identical afterwards and (3) every weight it owns changed.
func TestMethodsLearnAndTouchOnlyTheirWeights(t *testing.T) {
	src := majoritySource(t)
	for _, mc := range methods {
		t.Run(mc.name, func(t *testing.T) {
			scope := newBase(t, tiny, 1)
			m := mustPeft(t, tiny, peft.Adapter{Name: "a", Method: mc.method})
			tr, err := New(testBackend(t), scope, tiny, m, Config{Steps: 150, BatchSize: 32, LR: mc.lr, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			evalBatches, _ := src.EvalBatches(32) // The size Run uses: its first evaluation reuses this graph.
			// Evaluating first creates the adapter's weights, so the snapshot has them.
			if _, err := tr.Evaluate(evalBatches); err != nil {
				t.Fatal(err)
			}
			before := snapshot(scope)
			// GoMLX does not save trainability and some layers set it again
			// when they build: mark everything trainable, as after a reload,
			// so only the trainer's re-applying on the training build freezes.
			for v := range scope.IterVariables() {
				v.SetTrainable(true)
			}
			rec, err := tr.Run(src)
			if err != nil {
				t.Fatal(err)
			}
			first, last := rec.Evals[0], rec.Evals[len(rec.Evals)-1]
			t.Logf("%s: eval loss %.3f -> %.3f, accuracy %.2f -> %.2f, %d trainable (plan %d)",
				mc.name, first.Loss, last.Loss, first.Accuracy, last.Accuracy, rec.TrainableParams, rec.PlannedTrainable)
			// ln 2 is what a model scores that learned only how often each
			// label occurs: going clearly below it means it learned the rule.
			if !(last.Loss < 0.7*first.Loss && last.Loss < math.Ln2) {
				t.Errorf("eval loss went from %.3f to %.3f, want below 70%% of the start and below ln 2", first.Loss, last.Loss)
			}
			if !(last.Accuracy >= first.Accuracy+0.05) {
				t.Errorf("eval accuracy went from %.2f to %.2f, want a rise of at least 0.05", first.Accuracy, last.Accuracy)
			}

			after := snapshot(scope)
			owned, frozen := 0, 0
			for name, was := range before {
				if strings.HasPrefix(name, "/optimizers/") || strings.HasPrefix(name, "/AdamOptimizer/") {
					continue
				}
				now := after[name]
				_, own := m.Owner(name)
				isBase := slices.ContainsFunc(m.Layout.Params, func(p site.Param) bool { return p.Name == name })
				switch {
				case own:
					owned++
					if slices.Equal(was, now) {
						t.Errorf("trainable weight %s did not change", name)
					}
				case isBase:
					frozen++
					if !bitsEqual(was, now) {
						t.Errorf("frozen base weight %s changed", name)
					}
				}
			}
			if owned == 0 || (mc.name != "FT" && frozen == 0) {
				t.Errorf("checked %d owned and %d frozen weights: the test saw nothing", owned, frozen)
			}
		})
	}
}

func bitsEqual(a, b []float32) bool {
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
