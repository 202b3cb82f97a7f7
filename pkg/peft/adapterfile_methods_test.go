package peft_test

import (
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/safetensors"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// TestAdapterFilesWithRealMethods trains nothing but perturbs every weight an
// adapter owns, saves the adapter, loads it onto the base reloaded from its
// checkpoint, and checks the outputs are bit-identical and differ from the
// base's.
func TestAdapterFilesWithRealMethods(t *testing.T) {
	c := peftest.MM
	l := c.Layout()
	b := peftest.Backend(t)
	baseDir := t.TempDir()
	{
		scope := peftest.NewCtx(t)
		if err := model.Init(b, scope, c); err != nil {
			t.Fatal(err)
		}
		if err := model.Save(baseDir, c, scope); err != nil {
			t.Fatal(err)
		}
	}
	_, baseCtx, err := model.Load(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	baseCls, _ := peftest.Forward(t, baseCtx, c, nil)

	cases := []struct {
		name     string
		method   peft.Method
		wantKeys []string // some of the keys the weights file must hold
	}{
		{"adalink", adalink.Config{Rank: 2}, []string{"input/text/", "input/image/"}},
		{"adalink-shared", adalink.Config{Rank: 3, Shared: true, Activation: "tanh", Modalities: []string{"text", "image"}}, nil},
		{"lora", lora.Config{Rank: 2, Alpha: 4, Targets: []string{"block/*/attn/{q,v}"}}, []string{"base_model.model.block.0.attn.q.lora_A.weight", "base_model.model.block.1.attn.v.lora_B.weight"}},
		{"prompt", prompt.Config{Tokens: 2}, nil},
		{"full-head", full.Config{Preset: "head"}, []string{"head/cls/weights", "head/lm/biases"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, scope, err := model.Load(baseDir)
			if err != nil {
				t.Fatal(err)
			}
			m, err := peft.New(l, peft.Adapter{Name: "task", Method: tc.method})
			if err != nil {
				t.Fatal(err)
			}
			peftest.Forward(t, scope, c, m) // creates the adapter's weights
			r := rand.New(rand.NewPCG(3, 4))
			for v := range scope.IterVariables() {
				if _, owned := m.Owner(v.Path()); owned {
					vals := peftest.Flat(t, v.MustValue())
					for i := range vals {
						vals[i] += 0.3 * (r.Float32() - 0.5)
					}
					if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)); err != nil {
						t.Fatal(err)
					}
				}
			}
			wantCls, wantLM := peftest.Forward(t, scope, c, m)
			if d := peftest.MaxDiff(wantCls, baseCls); d < 1e-4 {
				t.Fatalf("perturbed adapter does not change the output (max diff %g): the test would prove nothing", d)
			}

			dir := filepath.Join(t.TempDir(), tc.name)
			if err := peft.SaveAdapter(dir, scope, m, "task"); err != nil {
				t.Fatal(err)
			}
			st, err := safetensors.ReadFile(filepath.Join(dir, peft.WeightsFile))
			if err != nil {
				t.Fatal(err)
			}
			names := strings.Join(st.Names(), " ")
			t.Logf("%s: %d weights: %s", tc.name, len(st.Tensors), names)
			for _, k := range tc.wantKeys {
				if !strings.Contains(names, k) {
					t.Errorf("weights file lacks %q: %s", k, names)
				}
			}

			_, ctx2, err := model.Load(baseDir)
			if err != nil {
				t.Fatal(err)
			}
			a, err := peft.LoadAdapter(dir, ctx2, l)
			if err != nil {
				t.Fatal(err)
			}
			// The file holds the configuration with its zero fields resolved (package doc, "Zero values").
			if want := resolved(tc.method); !reflect.DeepEqual(a.Method, want) || a.Name != "task" || !a.Frozen {
				t.Errorf("loaded %#v, want %#v (frozen)", a, want)
			}
			m2, err := peft.New(l, a)
			if err != nil {
				t.Fatal(err)
			}
			gotCls, gotLM := peftest.Forward(t, ctx2, c, m2)
			if d := max(peftest.MaxDiff(gotCls, wantCls), peftest.MaxDiff(gotLM, wantLM)); d != 0 {
				t.Errorf("outputs after loading differ from before saving by %g", d)
			}
		})
	}
}

// TestAdapterFilesComposed saves two adapters of one model separately and
// loads both onto a fresh base: each file holds only its own weights.
func TestAdapterFilesComposed(t *testing.T) {
	c := peftest.Text
	l := c.Layout()
	b := peftest.Backend(t)
	scope := peftest.NewCtx(t)
	if err := model.Init(b, scope, c); err != nil {
		t.Fatal(err)
	}
	baseDir := t.TempDir()
	if err := model.Save(baseDir, c, scope); err != nil {
		t.Fatal(err)
	}
	m, err := peft.New(l,
		peft.Adapter{Name: "in", Method: adalink.Config{Rank: 2}},
		peft.Adapter{Name: "qv", Method: lora.Config{Rank: 2, Targets: []string{"block/*/attn/{q,v}"}}})
	if err != nil {
		t.Fatal(err)
	}
	peftest.Forward(t, scope, c, m)
	r := rand.New(rand.NewPCG(5, 6))
	for v := range scope.IterVariables() {
		if strings.HasPrefix(v.Path(), peft.AdapterScope+"/") {
			vals := peftest.Flat(t, v.MustValue())
			for i := range vals {
				vals[i] = r.Float32() - 0.5
			}
			_ = v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...))
		}
	}
	want, _ := peftest.Forward(t, scope, c, m)
	dirs := map[string]string{"in": t.TempDir(), "qv": t.TempDir()}
	for name, dir := range dirs {
		if err := peft.SaveAdapter(dir, scope, m, name); err != nil {
			t.Fatal(err)
		}
	}
	_, ctx2, err := model.Load(baseDir)
	if err != nil {
		t.Fatal(err)
	}
	var adapters []peft.Adapter
	for _, name := range []string{"in", "qv"} {
		a, err := peft.LoadAdapter(dirs[name], ctx2, l)
		if err != nil {
			t.Fatal(err)
		}
		adapters = append(adapters, a)
	}
	m2, err := peft.New(l, adapters...)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := peftest.Forward(t, ctx2, c, m2); peftest.MaxDiff(got, want) != 0 {
		t.Errorf("composed adapters after loading differ by %g", peftest.MaxDiff(got, want))
	}
}

// TestBaseHashSurvivesTraining: the trainer's optimizer state, step counters
// and RNG state are not base weights, so training an adapter leaves the
// base's hash as it was, and the trainer's checkpoint loads onto the base.
func TestBaseHashSurvivesTraining(t *testing.T) {
	c := model.Config{Name: "tiny", Vocab: 8, Width: 8, Heads: 2, Blocks: 1, MLPDim: 16, MaxLen: 4, Classes: 2}
	b := peftest.Backend(t)
	scope := peftest.NewCtx(t)
	if err := model.Init(b, scope, c); err != nil {
		t.Fatal(err)
	}
	before, err := peft.BaseHash(scope)
	if err != nil {
		t.Fatal(err)
	}
	m, err := peft.New(c.Layout(), peft.Adapter{Name: "task", Method: lora.Config{Rank: 2, Targets: []string{"block/*/attn/{q,v}"}}})
	if err != nil {
		t.Fatal(err)
	}
	examples := trainer.Batch{
		Tokens: tensors.FromValue([][]int32{{1, 5, 6, 7}, {2, 5, 6, 7}}),
		Labels: tensors.FromValue([]int32{0, 1}),
	}
	data, err := trainer.NewMemory(examples, examples)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trainer.New(b, scope, c, m, trainer.Config{Steps: 5, BatchSize: 2, LR: 0.05, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(data); err != nil {
		t.Fatal(err)
	}
	var state []string
	for v := range scope.IterVariables() {
		if !peft.IsBaseVariable(v.Path()) && !strings.HasPrefix(v.Path(), peft.AdapterScope+"/") {
			state = append(state, v.Path())
		}
	}
	t.Logf("training state, not hashed: %v", state)
	if len(state) == 0 {
		t.Error("training created no optimizer state: this test checks nothing")
	}
	after, err := peft.BaseHash(scope)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("training an adapter changed the base hash; variables outside the base: %v", state)
	}
	dir := t.TempDir()
	if err := tr.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	ctx2 := peftest.NewCtx(t)
	if err := model.Init(b, ctx2, c); err != nil { // same seed, same base
		t.Fatal(err)
	}
	if _, err := peft.LoadAdapter(filepath.Join(dir, "task"), ctx2, c.Layout()); err != nil {
		t.Fatal(err)
	}
}

// resolved is m with its zero fields replaced by their defaults: every method's Config has a
// WithDefaults returning its own type.
func resolved(m peft.Method) peft.Method {
	return reflect.ValueOf(m).MethodByName("WithDefaults").Call(nil)[0].Interface().(peft.Method)
}
