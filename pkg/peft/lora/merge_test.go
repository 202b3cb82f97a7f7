package lora

import (
	"math"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/checkpoint"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
)

// trained returns a context holding tiny's base weights and a LoRA adapter
// "lora" whose A and B are random (as after training), with the model it is
// attached to, the base weights before any merge, and the adapted outputs.
func trained(t *testing.T, cfg Config, extra ...peft.Adapter) (*mlmodel.Scope, *peft.Model, map[string][]float32, []float32) {
	t.Helper()
	sc := newCtx(t)
	m := mustModel(t, tiny.Layout(), append(extra, peft.Adapter{Name: "lora", Method: cfg})...)
	base := logits(t, sc, m) // creates every variable
	randomize(t, sc, "/adapters/lora", VarA, 0.3, 5)
	randomize(t, sc, "/adapters/lora", VarB, 0.3, 6)
	adapted := logits(t, sc, m)
	if d := maxAbsDiff(base, adapted); d < 1e-2 {
		t.Fatalf("random LoRA weights moved the outputs by only %g", d)
	}
	return sc, m, snapshot(t, sc), adapted
}

func TestMergeUnmerge(t *testing.T) {
	for _, cfg := range []Config{
		{Rank: 2, Alpha: 5, Targets: []string{AllLinear, "head/*"}},
		{Rank: 4, RSLoRA: true, Dropout: 0.1}, // default q, v
	} {
		sc, m, before, unmerged := trained(t, cfg)
		if merged, err := IsMerged(sc, m, "lora"); err != nil || merged {
			t.Fatalf("IsMerged before Merge = %v, %v", merged, err)
		}
		if err := Merge(sc, m, "lora"); err != nil {
			t.Fatal(err)
		}
		if merged, err := IsMerged(sc, m, "lora"); err != nil || !merged {
			t.Fatalf("IsMerged after Merge = %v, %v", merged, err)
		}

		// The base weights now hold W + scale·A·B (checked against the
		// graph's own computation: merged outputs match unmerged ones, and
		// the hook no longer adds the update, else the update would count twice).
		merged := logits(t, sc, m)
		if d := maxAbsDiff(merged, unmerged); d > 1e-5 {
			t.Errorf("%+v: merged and unmerged outputs differ by %g", cfg, d)
		} else {
			t.Logf("%+v: merged vs unmerged max |diff| = %.2g", cfg, d)
		}
		res, _ := m.Resolution("lora")
		changed := 0
		for _, s := range res.Sites {
			if !bitIdentical(values(t, variable(t, sc, s.Scope(), "weights")), before[s.Scope()+"/weights"]) {
				changed++
			}
		}
		if changed != len(res.Sites) {
			t.Errorf("Merge changed %d of %d adapted weights", changed, len(res.Sites))
		}
		// Each merged weight is W + scale·A·B rounded once to float32: within
		// half a unit in the last place of the exact value.
		rank := cfg.WithDefaults().Rank
		for _, s := range res.Sites {
			w := before[s.Scope()+"/weights"]
			got := values(t, variable(t, sc, s.Scope(), "weights"))
			a := values(t, variable(t, sc, "/adapters/lora/"+s.Name, VarA))
			b := values(t, variable(t, sc, "/adapters/lora/"+s.Name, VarB))
			for i := range s.In {
				for j := range s.Out {
					exact := float64(w[i*s.Out+j])
					for k := range rank {
						exact += cfg.Scale() * float64(a[i*rank+k]) * float64(b[k*s.Out+j])
					}
					g := got[i*s.Out+j]
					ulp := float64(math.Nextafter32(g, float32(math.Inf(1))) - g)
					if math.Abs(float64(g)-exact) > 0.5001*ulp {
						t.Fatalf("%s merged W[%d,%d] = %g, exact %.10g: more than half an ulp off", s.Name, i, j, g, exact)
					}
				}
			}
		}
		// Base without any hook = the merged model.
		if d := maxAbsDiff(logits(t, sc, nil), unmerged); d > 1e-5 {
			t.Errorf("the merged base alone differs from the adapted model by %g", d)
		}

		if err := Unmerge(sc, m, "lora"); err != nil {
			t.Fatal(err)
		}
		after := snapshot(t, sc)
		for name, v := range before {
			if !bitIdentical(after[name], v) {
				t.Errorf("%+v: Unmerge did not restore %s bit for bit (max diff %g)", cfg, name, maxAbsDiff(after[name], v))
			}
		}
		if merged, _ := IsMerged(sc, m, "lora"); merged {
			t.Error("still merged after Unmerge")
		}
		if got := logits(t, sc, m); !bitIdentical(got, unmerged) {
			t.Errorf("after Unmerge outputs differ from before Merge by %g", maxAbsDiff(got, unmerged))
		}
	}
}

func TestMergeErrors(t *testing.T) {
	sc, m, before, _ := trained(t, Config{Rank: 2}, peft.Adapter{Name: "text", Method: adalink.Config{Rank: 2, Modalities: []string{"text"}}})
	check := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to contain %q", what, err, want)
		}
	}
	check("Unmerge of an unmerged adapter", Unmerge(sc, m, "lora"), `adapter "lora" is not merged`)
	check("Merge of an unknown adapter", Merge(sc, m, "nope"), `no adapter "nope" attached (attached: [text lora])`)
	check("Merge of an AdaLink adapter", Merge(sc, m, "text"), `adapter "text" is ADALINK, not LoRA`)
	check("Merge with no model", Merge(sc, nil, "lora"), "no peft.Model")
	if err := Merge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	check("second Merge", Merge(sc, m, "lora"), `adapter "lora" is already merged`)
	if err := Unmerge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	check("second Unmerge", Unmerge(sc, m, "lora"), "is not merged")

	// Before any graph built the adapter's weights, there is nothing to merge;
	// a failed Merge changes nothing.
	fresh := newCtx(t)
	_ = logits(t, fresh, nil) // base weights only
	baseBefore := snapshot(t, fresh)
	check("Merge without adapter weights", Merge(fresh, m, "lora"), "/adapters/lora/block/0/attn/q/lora_A not found")
	if merged, _ := IsMerged(fresh, m, "lora"); merged {
		t.Error("a failed Merge marked the adapter merged")
	}
	for name, v := range snapshot(t, fresh) {
		if !bitIdentical(v, baseBefore[name]) {
			t.Errorf("a failed Merge changed %s", name)
		}
	}
	// A misshapen adapter weight (e.g. loaded from another rank) is refused.
	wrong := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 3}})
	check("Merge with the wrong rank", Merge(sc, wrong, "lora"), "want (Float32)[8 3]")
	for name, v := range snapshot(t, sc) {
		if !bitIdentical(v, before[name]) {
			t.Errorf("a refused Merge changed %s", name)
		}
	}
}

// After a GoMLX checkpoint round trip the mark survives (as the value true)
// with the merged weights, the reloaded model is still merged, and Unmerge
// falls back to subtraction, exact to float32 rounding.
func TestMergedCheckpointRoundTrip(t *testing.T) {
	sc, m, before, unmerged := trained(t, Config{Rank: 4, Alpha: 2})
	if err := Merge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	h, err := checkpoint.Build(sc.Store()).Dir(dir).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
	loaded := mlmodel.NewStore().RootScope()
	if _, err := checkpoint.Load(loaded.Store()).Dir(dir).Immediate().Done(); err != nil {
		t.Fatal(err)
	}
	if merged, err := IsMerged(loaded, m, "lora"); err != nil || !merged {
		t.Fatalf("IsMerged after reload = %v, %v", merged, err)
	}
	if d := maxAbsDiff(logits(t, loaded, m), unmerged); d > 1e-5 {
		t.Errorf("reloaded merged model differs from the adapted one by %g", d)
	}
	if err := Unmerge(loaded, m, "lora"); err != nil {
		t.Fatal(err)
	}
	for name, v := range before {
		got := values(t, variable(t, loaded, name[:strings.LastIndex(name, "/")], name[strings.LastIndex(name, "/")+1:]))
		if d := maxAbsDiff(got, v); d > 1e-6 {
			t.Errorf("%s after reload+Unmerge is off by %g", name, d)
		}
	}
	if d := maxAbsDiff(logits(t, loaded, m), unmerged); d > 1e-5 {
		t.Errorf("reloaded and unmerged model differs by %g", d)
	}
}

// A base weight changed after Merge keeps its change: Unmerge subtracts the
// update instead of restoring the stale original.
func TestUnmergeAfterBaseChanged(t *testing.T) {
	sc, m, before, _ := trained(t, Config{Rank: 2})
	if err := Merge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	const scope = "/block/1/attn/v"
	v := variable(t, sc, scope, "weights")
	mergedW := values(t, v)
	bumped := make([]float32, len(mergedW))
	for i := range bumped {
		bumped[i] = mergedW[i] + 0.25
	}
	if err := v.SetValue(tensors.FromFlatDataAndDimensions(bumped, 8, 8)); err != nil {
		t.Fatal(err)
	}
	if err := Unmerge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	got := values(t, v)
	orig := before[scope+"/weights"]
	for i := range got {
		if d := float64(got[i]) - float64(orig[i]) - 0.25; d > 1e-6 || d < -1e-6 {
			t.Fatalf("weights[%d] = %g, want original %g + 0.25", i, got[i], orig[i])
		}
	}
	// The untouched weights are restored exactly.
	if !bitIdentical(values(t, variable(t, sc, "/block/0/attn/q", "weights")), before["/block/0/attn/q/weights"]) {
		t.Error("an untouched weight was not restored bit for bit")
	}
}

// LoRA on q, v composes with AdaLink on the text input: each owns its
// weights, the pair starts at the base's outputs, and merging LoRA leaves
// AdaLink running.
func TestComposeWithAdaLink(t *testing.T) {
	ada := peft.Adapter{Name: "text", Method: adalink.Config{Rank: 2, Modalities: []string{"text"}}}
	m := mustModel(t, tiny.Layout(), ada, peft.Adapter{Name: "lora", Method: Config{Rank: 4}})
	d, nb := tiny.Width, tiny.Blocks
	if p := m.Plan(); p.Trainable != 2*d*2+nb*2*4*(d+d) {
		t.Errorf("composed plan trainable = %d, want 2·d·r + LoRA's %d", p.Trainable, 2*d*2+nb*2*4*(d+d))
	}
	sc := newCtx(t)
	base := logits(t, sc, nil)
	if got := logits(t, sc, m); !bitIdentical(got, base) {
		t.Errorf("AdaLink + LoRA at init differ from the base by %g", maxAbsDiff(got, base))
	}
	// Every trainable variable belongs to exactly one adapter.
	m.ApplyTrainable(sc)
	for v := range sc.IterVariables() {
		owner, owned := m.Owner(v.Path())
		want := ""
		switch {
		case strings.HasPrefix(v.Path(), "/adapters/text/"):
			want = "text"
		case strings.HasPrefix(v.Path(), "/adapters/lora/"):
			want = "lora"
		}
		if (want != "") != owned || owner.Name != want || v.Trainable != owned {
			t.Errorf("%s: owner %q (trainable %v), want %q", v.Path(), owner.Name, v.Trainable, want)
		}
	}
	randomize(t, sc, "/adapters", "B", 0.5, 8) // AdaLink's B
	randomize(t, sc, "/adapters/lora", VarB, 0.5, 9)
	both := logits(t, sc, m)
	if err := Merge(sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	if dd := maxAbsDiff(logits(t, sc, m), both); dd > 1e-5 {
		t.Errorf("merged LoRA + AdaLink differ from unmerged by %g", dd)
	}
	// Without AdaLink the merged base is not the composed model: AdaLink still counts.
	loraOnly := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 4}})
	if dd := maxAbsDiff(logits(t, sc, loraOnly), both); dd < 1e-3 {
		t.Errorf("dropping AdaLink changed the outputs by only %g", dd)
	}
}
