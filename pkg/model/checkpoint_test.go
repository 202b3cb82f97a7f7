package model

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/safetensors"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	rnd := rand.New(rand.NewPCG(23, 24))
	c := mmCfg
	c.EndToken = 2
	scope := newCtx(t)
	if err := Init(newBackend(t), scope, c); err != nil {
		t.Fatal(err)
	}
	// An adapter weight in the same context must not reach the base file.
	scope.Store().Scope("/adapters/x").VariableWithValue("a", []float32{1, 2})
	dir := filepath.Join(t.TempDir(), "base")
	if err := Save(dir, c, scope); err != nil {
		t.Fatal(err)
	}
	c2, ctx2, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c2 != c {
		t.Errorf("config round trip: %+v != %+v", c2, c)
	}
	n := 0
	for v := range ctx2.IterVariables() {
		n++
		orig := scope.Store().GetVariable(v.Path())
		if orig == nil {
			t.Errorf("loaded %s, which the saved context did not hold", v.Path())
			continue
		}
		if maxDiff(flat(orig.MustValue()), flat(v.MustValue())) != 0 {
			t.Errorf("%s changed in the round trip", v.Path())
		}
	}
	if n != len(c.Layout().Params) {
		t.Errorf("loaded %d variables, want the %d base weights", n, len(c.Layout().Params))
	}
	// The base's identity survives the round trip (adapters, RNG state excluded).
	h1, err := peft.BaseHash(scope)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := peft.BaseHash(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	if h1 != h2 {
		t.Errorf("BaseHash changed in the round trip: %s -> %s", h1, h2)
	}
	tokens := [][]int32{{3, 4, 5}, {6, 0, 0}}
	images := randImages(rnd, 2, c)
	a := mustRun(t, scope, tokens, images, lmFn(c, nil))
	b := mustRun(t, ctx2, tokens, images, lmFn(c, nil))
	if d := maxDiff(flat(a[0]), flat(b[0])); d != 0 {
		t.Errorf("loaded model's logits differ by %g", d)
	}
	// Saving again over the same directory works (atomic replace).
	if err := Save(dir, c2, ctx2); err != nil {
		t.Fatal(err)
	}
}

func TestSaveLoadErrors(t *testing.T) {
	b := newBackend(t)
	c := textCfg
	scope := newCtx(t)
	dir := t.TempDir()
	wantErr(t, Save(dir, c, scope), "is not in the context (run model.Init")
	if err := Init(b, scope, c); err != nil {
		t.Fatal(err)
	}
	wider := c
	wider.Width, wider.MLPDim = 16, 16
	wantErr(t, Save(dir, wider, scope), "weight /embed/text/embeddings is (Float32)[13, 8], the config wants Float32[13 16]")

	if err := Save(dir, c, scope); err != nil {
		t.Fatal(err)
	}
	writeConfig := func(d string, cfg any) {
		data, _ := json.Marshal(cfg)
		if err := os.WriteFile(filepath.Join(d, ConfigFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyDir := func() string {
		d := t.TempDir()
		for _, f := range []string{ConfigFile, WeightsFile} {
			data, err := os.ReadFile(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, f), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}

	_, _, err := Load(t.TempDir())
	wantErr(t, err, "config.json")

	d := copyDir()
	writeConfig(d, wider)
	_, _, err = Load(d)
	wantErr(t, err, `weight "embed/text/embeddings" is F32[13 8], the config wants F32[13 16]`)

	d = copyDir()
	writeConfig(d, map[string]any{"vocab": 13, "width": 8, "heads": 2, "blocks": 2, "mlp_dim": 16, "max_len": 12, "clases": 3})
	_, _, err = Load(d)
	wantErr(t, err, `unknown field "clases"`)

	d = copyDir()
	bad := c
	bad.Heads = 3
	writeConfig(d, bad)
	_, _, err = Load(d)
	wantErr(t, err, "not divisible by Heads 3")

	d = copyDir()
	noCls := c
	noCls.Classes = 0
	writeConfig(d, noCls)
	_, _, err = Load(d)
	wantErr(t, err, `holds weight "head/cls/biases", which config tiny-text does not have`)

	d = copyDir()
	sinus := c
	sinus.Positions = Sinusoidal
	writeConfig(d, sinus)
	_, _, err = Load(d)
	wantErr(t, err, `"embed/pos/embeddings"`)

	d = copyDir()
	f, err := safetensors.ReadFile(filepath.Join(d, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors = slices.DeleteFunc(f.Tensors, func(t safetensors.Tensor) bool { return t.Name == "block/1/mlp/up/weights" })
	if err := safetensors.WriteFile(filepath.Join(d, WeightsFile), f); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(d)
	wantErr(t, err, `has no weight "block/1/mlp/up/weights"`)

	d = copyDir()
	data, _ := os.ReadFile(filepath.Join(d, WeightsFile))
	if err := os.WriteFile(filepath.Join(d, WeightsFile), data[:len(data)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = Load(d)
	if err == nil || !strings.Contains(err.Error(), WeightsFile) {
		t.Errorf("truncated weights: %v", err)
	}
}

// TestInitKeepsLoaded: Init fills in missing weights and keeps existing ones.
func TestInitKeepsLoaded(t *testing.T) {
	c := textCfg
	scope := newCtx(t)
	planted := make([]float32, c.Vocab*c.Width)
	planted[5] = 42
	scope.Store().Scope("/embed/text").VariableWithValue("embeddings", tensors.FromFlatDataAndDimensions(planted, c.Vocab, c.Width))
	if err := Init(newBackend(t), scope, c); err != nil {
		t.Fatal(err)
	}
	got := flat(scope.Store().GetVariable(mlmodel.JoinPath("/embed/text", "embeddings")).MustValue())
	if got[5] != 42 {
		t.Error("Init overwrote a weight already in the context")
	}
	for _, p := range c.Layout().Params {
		if v := scope.Store().GetVariable(p.Name); v == nil || !v.HasValue() {
			t.Errorf("Init left %s missing", p.Name)
		}
	}
	wantErr(t, Init(newBackend(t), scope, Config{}), "the model has no input")

	// A weight of the wrong shape makes graph building panic: Init returns it as an error.
	wrong := newCtx(t)
	wrong.Store().Scope("/embed/text").VariableWithValue("embeddings", tensors.FromFlatDataAndDimensions(make([]float32, 6), 2, 3))
	wantErr(t, Init(newBackend(t), wrong, c), "init "+c.ModelName())
}
