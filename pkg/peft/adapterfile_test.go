package peft

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/safetensors"
	"github.com/peftlab/peftlab/pkg/site"
)

// lowRank stands in for a real method in the file tests: weights A [In, r]
// and B [r, Out] at each targeted site, and optionally base weights it
// trains, like full fine-tuning.
type lowRank struct {
	Rank      int          `json:"r"`
	Targets   site.Pattern `json:"target_modules,omitempty"`
	TrainBase site.Pattern `json:"train_base,omitempty"`
}

const lowRankType = "PEFTLAB_TEST_LOWRANK"

func init() { Register(lowRankType, func() Method { return &lowRank{} }) }

func (c lowRank) Type() string { return lowRankType }

func (c lowRank) Resolve(l site.Layout) (Resolution, error) {
	var r Resolution
	if c.Rank <= 0 || c.Rank > l.Width {
		return r, fmt.Errorf("rank %d must be in [1, %d]", c.Rank, l.Width)
	}
	if c.Targets != "" {
		sites, err := l.Select(c.Targets)
		if err != nil {
			return r, err
		}
		r.Sites = sites
		for _, s := range sites {
			r.New = append(r.New,
				site.Param{Name: s.Name + "/A", Shape: []int{s.In, c.Rank}},
				site.Param{Name: s.Name + "/B", Shape: []int{c.Rank, s.Out}})
		}
	}
	if c.TrainBase != "" {
		ps, err := l.SelectParams(c.TrainBase)
		if err != nil {
			return r, err
		}
		r.Base = ps
	}
	return r, nil
}

func (c lowRank) Input(_ *mlmodel.Scope, _ site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	return x, mask
}

func (c lowRank) Linear(_ *mlmodel.Scope, _ site.Site, _, y *graph.Node) *graph.Node { return y }

// attachAndFill attaches method as adapter name and creates its weights in
// sc (as a graph build would), filled from seed.
func attachAndFill(t testing.TB, sc *mlmodel.Scope, method Method, name string, seed float32) *Model {
	t.Helper()
	m, err := New(fileTestLayout(), Adapter{Name: name, Method: method})
	if err != nil {
		t.Fatal(err)
	}
	res, _ := m.Resolution(name)
	for i, p := range res.New {
		setVar(t, sc, AdapterScope+"/"+name+"/"+p.Name, p.Shape, ramp(p.Size(), seed+float32(i)))
	}
	return m
}

// values returns every variable of sc under prefix, as flat float32 data.
func values(sc *mlmodel.Scope, prefix string) map[string][]float32 {
	out := map[string][]float32{}
	for v := range sc.IterVariables() {
		if strings.HasPrefix(v.Path(), prefix) {
			out[v.Path()] = tensors.MustCopyFlatData[float32](v.MustValue())
		}
	}
	return out
}

func sameValues(a, b map[string][]float32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		if vb, ok := b[k]; !ok || !slices.Equal(va, vb) {
			return false
		}
	}
	return true
}

func TestSaveLoadRoundTrip(t *testing.T) {
	l := fileTestLayout()
	dir := filepath.Join(t.TempDir(), "task")
	sc := newBase(t, l, 1, false)
	method := lowRank{Rank: 2, Targets: "block/*/attn/{q,v}"}
	m := attachAndFill(t, sc, method, "task", 5)
	if err := SaveAdapter(dir, sc, m, "task"); err != nil {
		t.Fatal(err)
	}

	// The config: HF's fields, the method's, peftlab's.
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"peft_type": lowRankType, "r": 2.0, "target_modules": "block/*/attn/{q,v}",
		"base_model_name_or_path": "tiny-files", "base_model_hash": mustHash(t, sc),
		"adapter_name": "task", "format_version": float64(FormatVersion),
	}
	for k, v := range want {
		if cfg[k] != v {
			t.Errorf("config %s = %v, want %v", k, cfg[k], v)
		}
	}
	if cfg["peftlab_version"] == "" || len(cfg["adapter_model_sha256"].(string)) != 64 {
		t.Errorf("config lacks peftlab_version or adapter_model_sha256:\n%s", raw)
	}
	if !strings.HasPrefix(string(raw), "{\n  \"peft_type\"") {
		t.Errorf("config does not start with peft_type:\n%s", raw)
	}

	// The weights: only the adapter's, under HF-style relative keys.
	st, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"block/0/attn/q/A", "block/0/attn/q/B", "block/0/attn/v/A", "block/0/attn/v/B"}
	if got := st.Names(); !slices.Equal(got, wantKeys) {
		t.Errorf("weight keys = %v, want %v", got, wantKeys)
	}

	// Load onto a fresh copy of the same base.
	ctx2 := newBase(t, l, 1, true)
	a, err := LoadAdapter(dir, ctx2, l)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "task" || a.Method != method || !a.Frozen {
		t.Errorf("loaded %+v, want the task adapter, method %+v by value, frozen", a, method)
	}
	if !sameValues(values(sc, "/adapters/"), values(ctx2, "/adapters/")) {
		t.Error("loaded adapter weights differ from the saved ones")
	}
	if !sameValues(values(sc, "/block"), values(ctx2, "/block")) {
		t.Error("loading changed the base")
	}
	if _, err := New(l, a); err != nil {
		t.Errorf("loaded adapter does not attach: %v", err)
	}

	// Saving again overwrites in place and leaves no temporary files.
	m2 := attachAndFill(t, sc, method, "task", 9)
	if err := SaveAdapter(dir, sc, m2, "task"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("adapter directory holds %d entries, want the 2 files", len(entries))
	}
	// Loading over an adapter already in the context replaces its weights.
	if _, err := LoadAdapter(dir, ctx2, l); err != nil {
		t.Fatal(err)
	}
	if !sameValues(values(sc, "/adapters/"), values(ctx2, "/adapters/")) {
		t.Error("reloading did not replace the adapter weights")
	}
}

// TestSaveLoadFullFineTune: the "adapter" of full fine-tuning is the base
// weights it trains, stored under their base names; the base identity covers
// the rest of the base.
func TestSaveLoadFullFineTune(t *testing.T) {
	l := fileTestLayout()
	dir := t.TempDir()
	original := mustHash(t, newBase(t, l, 1, false))
	sc := newBase(t, l, 1, false)
	m := attachAndFill(t, sc, lowRank{Rank: 1, TrainBase: "head/**"}, "head", 0)
	// "Train" the head.
	setVar(t, sc, "/head/cls/weights", []int{4, 3}, ramp(12, 42))
	setVar(t, sc, "/head/cls/biases", []int{3}, ramp(3, 43))
	if err := SaveAdapter(dir, sc, m, "head"); err != nil {
		t.Fatal(err)
	}
	st, err := safetensors.ReadFile(filepath.Join(dir, WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Names(); !slices.Equal(got, []string{"head/cls/biases", "head/cls/weights"}) {
		t.Errorf("weight keys = %v, want the head's base names", got)
	}

	// Loading onto the original base replaces the head; everything else stays.
	ctx2 := newBase(t, l, 1, false)
	if _, err := LoadAdapter(dir, ctx2, l); err != nil {
		t.Fatal(err)
	}
	if got := mustHash(t, ctx2); got != mustHash(t, sc) {
		t.Errorf("after loading, the base hashes to %s, want the fine-tuned %s", got, mustHash(t, sc))
	}
	if got := mustHash(t, ctx2); got == original {
		t.Error("loading a full fine-tune did not change the base")
	}
	// A base that differs outside the head is refused.
	ctx3 := newBase(t, l, 1, false)
	setVar(t, ctx3, "/block/0/ln1/gain", []int{4}, []float32{1, 1, 1, 1})
	if _, err := LoadAdapter(dir, ctx3, l); err == nil || !strings.Contains(err.Error(), "not counting the 2 the adapter replaces") {
		t.Errorf("full fine-tune on a different base: err = %v", err)
	}
}

// saved writes a valid adapter and returns its directory and the context
// it came from.
func saved(t testing.TB) (string, *mlmodel.Scope) {
	t.Helper()
	dir := t.TempDir()
	sc := newBase(t, fileTestLayout(), 1, false)
	m := attachAndFill(t, sc, lowRank{Rank: 2, Targets: "block/*/attn/{q,v}"}, "task", 5)
	if err := SaveAdapter(dir, sc, m, "task"); err != nil {
		t.Fatal(err)
	}
	return dir, sc
}

// editConfig rewrites one field of a saved adapter_config.json (nil deletes it).
func editConfig(t *testing.T, dir, key string, value any) {
	t.Helper()
	path := filepath.Join(dir, ConfigFile)
	raw, _ := os.ReadFile(path)
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if value == nil {
		delete(cfg, key)
	} else {
		cfg[key] = value
	}
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestLoadAdapterErrors(t *testing.T) {
	l := fileTestLayout()
	weights := func(dir string) string { return filepath.Join(dir, WeightsFile) }
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		base   func(t *testing.T) *mlmodel.Scope // nil: the right base
		want   []string
	}{
		{"unknown method", func(t *testing.T, dir string) { editConfig(t, dir, "peft_type", "NOPE") }, nil,
			[]string{`unknown peft_type "NOPE"`, lowRankType}},
		{"truncated weights", func(t *testing.T, dir string) {
			raw, _ := os.ReadFile(weights(dir))
			_ = os.WriteFile(weights(dir), raw[:len(raw)-5], 0o644)
		}, nil, []string{WeightsFile, "truncated"}},
		{"flipped data bit", func(t *testing.T, dir string) {
			raw, _ := os.ReadFile(weights(dir))
			raw[len(raw)-3] ^= 0x40
			_ = os.WriteFile(weights(dir), raw, 0o644)
		}, nil, []string{"SHA-256", "changed after the adapter was saved"}},
		{"wrong shapes", func(t *testing.T, dir string) { editConfig(t, dir, "r", 3) }, nil,
			[]string{"wrong shape", "block/0/attn/q/A is F32[4 2], want F32[4 3]", "block/0/attn/v/B is F32[2 4], want F32[3 4]"}},
		{"missing weights", func(t *testing.T, dir string) {
			editConfig(t, dir, "target_modules", "{block/0/attn/q,block/0/attn/v,head/cls}")
		}, nil,
			[]string{"missing: head/cls/A [4 2], head/cls/B [2 3]"}},
		{"extra weights", func(t *testing.T, dir string) { editConfig(t, dir, "target_modules", "block/0/attn/q") }, nil,
			[]string{"not expected by the method: block/0/attn/v/A, block/0/attn/v/B"}},
		{"different base", nil, func(t *testing.T) *mlmodel.Scope { return newBase(t, l, 2, false) },
			[]string{`trained on base model "tiny-files"`, "sha256:", "load the base model the adapter was trained on"}},
		{"no base", nil, func(t *testing.T) *mlmodel.Scope { return mlmodel.NewStore().RootScope() },
			[]string{"holds no base weights"}},
		{"no config", func(t *testing.T, dir string) { _ = os.Remove(filepath.Join(dir, ConfigFile)) }, nil,
			[]string{"not an adapter directory"}},
		{"no weights", func(t *testing.T, dir string) { _ = os.Remove(weights(dir)) }, nil,
			[]string{WeightsFile + " is missing"}},
		{"newer format", func(t *testing.T, dir string) { editConfig(t, dir, "format_version", 99) }, nil,
			[]string{"format_version 99"}},
		{"unknown field", func(t *testing.T, dir string) { editConfig(t, dir, "lora_dropout", 0.1) }, nil,
			[]string{`unknown field "lora_dropout"`}},
		{"bad field type", func(t *testing.T, dir string) { editConfig(t, dir, "format_version", "one") }, nil,
			[]string{`field "format_version"`}},
		{"missing field", func(t *testing.T, dir string) { editConfig(t, dir, "base_model_hash", nil) }, nil,
			[]string{`field "base_model_hash" is missing`}},
		{"bad adapter name", func(t *testing.T, dir string) { editConfig(t, dir, "adapter_name", "../x") }, nil,
			[]string{"not a valid adapter name"}},
		{"does not fit", func(t *testing.T, dir string) { editConfig(t, dir, "r", 0) }, nil,
			[]string{"does not fit base model tiny-files", "rank 0"}},
		{"config not json", func(t *testing.T, dir string) { _ = os.WriteFile(filepath.Join(dir, ConfigFile), []byte("{"), 0o644) }, nil,
			[]string{"not a JSON object"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := saved(t)
			if c.damage != nil {
				c.damage(t, dir)
			}
			sc := newBase(t, l, 1, false)
			if c.base != nil {
				sc = c.base(t)
			}
			before := values(sc, "/")
			_, err := LoadAdapter(dir, sc, l)
			if err == nil {
				t.Fatalf("LoadAdapter succeeded, want an error containing %q", c.want)
			}
			t.Log(err)
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q\nwant it to contain %q", err, w)
				}
			}
			if !sameValues(before, values(sc, "/")) {
				t.Error("a failed load changed the context")
			}
		})
	}
}

// TestLoadExplainsStrayVariables: a variable that is not a weight of the
// layout changes the hash; the error says so instead of blaming the weights.
func TestLoadExplainsStrayVariables(t *testing.T) {
	dir, _ := saved(t)
	l := fileTestLayout()
	sc := newBase(t, l, 1, false)
	setVar(t, sc, "/probe/w", []int{1}, []float32{0})
	_, err := LoadAdapter(dir, sc, l)
	if err == nil || !strings.Contains(err.Error(), "also holds /probe/w, which tiny-files does not list") {
		t.Errorf("err = %v", err)
	}
}

func TestLoadRefusesShapeClash(t *testing.T) {
	dir, _ := saved(t)
	l := fileTestLayout()
	sc := newBase(t, l, 1, false)
	setVar(t, sc, "/adapters/task/block/0/attn/q/A", []int{2, 2}, make([]float32, 4))
	if _, err := LoadAdapter(dir, sc, l); err == nil || !strings.Contains(err.Error(), "already has /adapters/task/block/0/attn/q/A") {
		t.Errorf("err = %v", err)
	}
}

func TestSaveAdapterErrors(t *testing.T) {
	l := fileTestLayout()
	sc := newBase(t, l, 1, false)
	m := attachAndFill(t, sc, lowRank{Rank: 2, Targets: "block/0/attn/q"}, "task", 5)
	dir := t.TempDir()
	if err := SaveAdapter(dir, sc, m, "other"); err == nil || !strings.Contains(err.Error(), "attached: task") {
		t.Errorf("unknown adapter: err = %v", err)
	}

	// Weights the graph has not created yet.
	m2, _ := New(l, Adapter{Name: "fresh", Method: lowRank{Rank: 1, Targets: "head/cls"}})
	if err := SaveAdapter(dir, sc, m2, "fresh"); err == nil || !strings.Contains(err.Error(), "/adapters/fresh/head/cls/A") ||
		!strings.Contains(err.Error(), "build it once before saving") {
		t.Errorf("missing weights: err = %v", err)
	}
	// A weight whose shape is not the declared one.
	setVar(t, sc, "/adapters/task/block/0/attn/q/B", []int{1, 4}, make([]float32, 4))
	if err := SaveAdapter(dir, sc, m, "task"); err == nil || !strings.Contains(err.Error(), "declares Float32[2 4]") {
		t.Errorf("misshapen weight: err = %v", err)
	}
	// A failed save writes nothing.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed saves left %d files", len(entries))
	}
	// A failed save leaves a previous good one intact.
	good, _ := saved(t)
	before, _ := os.ReadFile(filepath.Join(good, WeightsFile))
	if err := SaveAdapter(good, sc, m, "task"); err == nil {
		t.Fatal("save of a misshapen weight succeeded")
	}
	after, _ := os.ReadFile(filepath.Join(good, WeightsFile))
	if string(before) != string(after) {
		t.Error("a failed save changed the previous adapter")
	}
}

// reserved is a method whose configuration clashes with the file's own fields.
type reserved struct {
	lowRank
	AdapterName string `json:"adapter_name"`
}

func TestSaveRefusesReservedField(t *testing.T) {
	l := fileTestLayout()
	sc := newBase(t, l, 1, false)
	m := attachAndFill(t, sc, reserved{lowRank: lowRank{Rank: 1, Targets: "head/cls"}}, "r", 0)
	if err := SaveAdapter(t.TempDir(), sc, m, "r"); err == nil || !strings.Contains(err.Error(), `field "adapter_name"`) {
		t.Errorf("err = %v", err)
	}
}

// FuzzLoadAdapter feeds LoadAdapter corrupted configs and weight files. It
// must never panic, never change the context when it fails, and whatever it
// accepts must have the shapes the method declares. With fixSHA the
// recorded checksum is made to match the fuzzed weights, so that the fuzzer
// also reaches the checks behind it. Each input writes two files, so it runs
// at a few hundred inputs a second; a short minimization time keeps it moving:
//
//	go test ./pkg/peft -run '^$' -fuzz FuzzLoadAdapter -fuzztime 1m -fuzzminimizetime 2s
func FuzzLoadAdapter(f *testing.F) {
	dir, _ := saved(f)
	cfg, _ := os.ReadFile(filepath.Join(dir, ConfigFile))
	weights, _ := os.ReadFile(filepath.Join(dir, WeightsFile))
	f.Add(cfg, weights, false)
	f.Add(cfg, weights[:len(weights)/2], true)
	f.Add(cfg[:len(cfg)/2], weights, false)
	for _, i := range []int{3, 20, 100, len(weights) - 1} {
		w := slices.Clone(weights)
		w[i%len(w)] ^= 0x08
		f.Add(cfg, w, true)
	}
	f.Add([]byte(strings.Replace(string(cfg), `"r": 2`, `"r": 3`, 1)), weights, false)
	f.Add([]byte(strings.Replace(string(cfg), `"r": 2`, `"r": -1`, 1)), weights, false)
	f.Add([]byte(strings.Replace(string(cfg), lowRankType, "LORA", 1)), weights, false)
	l := fileTestLayout()
	f.Fuzz(func(t *testing.T, cfg, weights []byte, fixSHA bool) {
		if fixSHA {
			var m map[string]any
			if json.Unmarshal(cfg, &m) == nil && m != nil {
				sum := sha256.Sum256(weights)
				m["adapter_model_sha256"] = hex.EncodeToString(sum[:])
				cfg, _ = json.Marshal(m)
			}
		}
		dir := t.TempDir()
		_ = os.WriteFile(filepath.Join(dir, ConfigFile), cfg, 0o644)
		_ = os.WriteFile(filepath.Join(dir, WeightsFile), weights, 0o644)
		sc := newBase(t, l, 1, false)
		before := values(sc, "/")
		a, err := LoadAdapter(dir, sc, l)
		if err != nil {
			if !sameValues(before, values(sc, "/")) {
				t.Fatalf("failed load (%v) changed the context", err)
			}
			return
		}
		res, err := a.Method.Resolve(l)
		if err != nil {
			t.Fatalf("accepted adapter does not resolve: %v", err)
		}
		for _, p := range res.New {
			scope, name := mlmodel.SplitPath(a.Scope() + "/" + p.Name)
			v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
			if v == nil || !slices.Equal(v.Shape().Dimensions, p.Shape) {
				t.Fatalf("accepted adapter lacks %s %v", p.Name, p.Shape)
			}
		}
	})
}
