package lora

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/safetensors"
)

// savedPEFT trains (randomizes) a LoRA adapter on tiny, saves it and returns
// the directory, the base weights and the adapted logits.
func savedPEFT(t *testing.T, cfg Config) (dir string, base map[string][]float32, want []float32) {
	t.Helper()
	sc, m, snap, adapted := trained(t, cfg)
	dir = filepath.Join(t.TempDir(), "lora")
	if err := peft.SaveAdapter(dir, sc, m, "lora"); err != nil {
		t.Fatal(err)
	}
	// The adapter's A and B, for the orientation checks.
	for _, s := range m.Layout.Sites {
		for _, v := range []string{VarA, VarB} {
			if x := sc.Store().GetVariable("/adapters/lora/" + s.Name + "/" + v); x != nil {
				snap["/adapters/lora/"+s.Name+"/"+v] = values(t, x)
			}
		}
	}
	return dir, snap, adapted
}

// baseCtx is a fresh context holding the base weights of snap (not the adapter's).
func baseCtx(t *testing.T, snap map[string][]float32) *mlmodel.Scope {
	t.Helper()
	sc := newCtx(t)
	for _, p := range tiny.Layout().Params {
		if _, err := sc.Store().CreateVariable(p.Name, tensors.FromFlatDataAndDimensions(slices.Clone(snap[p.Name]), p.Shape...)); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

func readConfig(t *testing.T, dir string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, peft.ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeConfig(t *testing.T, dir string, cfg map[string]any) {
	t.Helper()
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, peft.ConfigFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestModuleNames(t *testing.T) {
	for site, module := range map[string]string{"block/0/attn/q": "block.0.attn.q", "embed/image/patch": "embed.image.patch", "head/lm": "head.lm"} {
		if got := ModuleName(site); got != module {
			t.Errorf("ModuleName(%q) = %q, want %q", site, got, module)
		}
		if got := SiteName(module); got != site {
			t.Errorf("SiteName(%q) = %q, want %q", module, got, site)
		}
	}
	if key, tr := (Config{}).FileWeight("block/1/mlp/up/lora_B"); key != "base_model.model.block.1.mlp.up.lora_B.weight" || !tr {
		t.Errorf("FileWeight = %q, %v", key, tr)
	}
}

// TestSavePEFTFormat: the files are Hugging Face PEFT's: its keys, its
// orientation (lora_A [r, in], lora_B [out, r]) and its config fields, with
// peftlab's identity beside them; and they load back bit for bit.
func TestSavePEFTFormat(t *testing.T) {
	cfg := Config{Rank: 2, Alpha: 6, Dropout: 0.05, Targets: []string{"block/*/attn/{q,v}", "block/1/mlp/up"}}
	dir, snap, want := savedPEFT(t, cfg)

	st, err := safetensors.ReadFile(filepath.Join(dir, peft.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	if st.Metadata["format"] != "pt" {
		t.Errorf("metadata %v, want format pt", st.Metadata)
	}
	var modules []string
	for _, s := range tiny.Layout().Sites {
		if !slices.Contains([]string{"block/0/attn/q", "block/0/attn/v", "block/1/attn/q", "block/1/attn/v", "block/1/mlp/up"}, s.Name) {
			continue
		}
		modules = append(modules, ModuleName(s.Name))
		for _, v := range []string{VarA, VarB} {
			key := "base_model.model." + ModuleName(s.Name) + "." + v + ".weight"
			ten, ok := st.Tensor(key)
			if !ok {
				t.Fatalf("no %s in %v", key, st.Names())
			}
			rows, cols := s.In, cfg.Rank // peftlab's A [in, r]
			if v == VarB {
				rows, cols = cfg.Rank, s.Out // B [r, out]
			}
			if !slices.Equal(ten.Shape, []int{cols, rows}) {
				t.Errorf("%s is %v, want PEFT's [%d %d]", key, ten.Shape, cols, rows)
			}
			x, _ := ten.ToTensor()
			got, _ := tensors.CopyFlatData[float32](x)
			orig := snap["/adapters/lora/"+s.Name+"/"+v]
			for i := range rows {
				for j := range cols {
					if got[j*rows+i] != orig[i*cols+j] {
						t.Fatalf("%s[%d, %d] = %g, want peftlab's [%d, %d] %g", key, j, i, got[j*rows+i], i, j, orig[i*cols+j])
					}
				}
			}
		}
	}
	if len(st.Tensors) != 2*len(modules) {
		t.Errorf("%d tensors, want %d: %v", len(st.Tensors), 2*len(modules), st.Names())
	}

	c := readConfig(t, dir)
	slices.Sort(modules)
	wantFields := map[string]any{
		"peft_type": "LORA", "r": 2.0, "lora_alpha": 6.0, "lora_dropout": 0.05, "use_rslora": false,
		"bias": "none", "fan_in_fan_out": false, "inference_mode": true, "modules_to_save": nil, "task_type": nil,
		"use_dora": false, "base_model_name_or_path": "tiny", "adapter_name": "lora",
		"format_version": float64(peft.FormatVersion),
	}
	for k, v := range wantFields {
		if got, ok := c[k]; !ok || !reflect.DeepEqual(got, v) {
			t.Errorf("config %s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if got := c["target_modules"]; !reflect.DeepEqual(got, toAny(modules)) {
		t.Errorf("target_modules = %v, want %v", got, modules)
	}
	if got := c[PeftTargetsField]; !reflect.DeepEqual(got, toAny(cfg.Targets)) {
		t.Errorf("%s = %v, want %v", PeftTargetsField, got, cfg.Targets)
	}
	if h, _ := c["base_model_hash"].(string); !strings.HasPrefix(h, "sha256:") {
		t.Errorf("base_model_hash = %v", c["base_model_hash"])
	}

	sc := baseCtx(t, snap)
	a, err := peft.LoadAdapter(dir, sc, tiny.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Method, cfg) || a.Name != "lora" {
		t.Errorf("loaded %#v, want %#v", a, cfg)
	}
	a.Frozen = false
	if got := logits(t, sc, mustModel(t, tiny.Layout(), a)); !bitIdentical(got, want) {
		t.Errorf("outputs after loading differ by %g", maxAbsDiff(got, want))
	}
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, x := range s {
		out[i] = x
	}
	return out
}

// TestLoadFormatVersion1: an adapter saved by peftlab before format 2
// (weights under peftlab's names and shapes, target_modules holding site
// patterns) still loads, to the same outputs.
func TestLoadFormatVersion1(t *testing.T) {
	cfg := Config{Rank: 2, Alpha: 4, Targets: []string{"block/*/attn/{q,v}"}}
	dir, snap, want := savedPEFT(t, cfg)
	// Rewrite the directory as peftlab v1 wrote it.
	old := &safetensors.File{Metadata: map[string]string{"format": "pt"}}
	for _, s := range []string{"block/0/attn/q", "block/0/attn/v", "block/1/attn/q", "block/1/attn/v"} {
		st, _ := tiny.Layout().Site(s)
		for _, v := range []string{VarA, VarB} {
			shape := []int{st.In, cfg.Rank}
			if v == VarB {
				shape = []int{cfg.Rank, st.Out}
			}
			ten, err := safetensors.FromTensor(s+"/"+v, tensors.FromFlatDataAndDimensions(snap["/adapters/lora/"+s+"/"+v], shape...))
			if err != nil {
				t.Fatal(err)
			}
			old.Tensors = append(old.Tensors, ten)
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, peft.WeightsFile), old); err != nil {
		t.Fatal(err)
	}
	c := readConfig(t, dir)
	writeConfig(t, dir, map[string]any{
		"peft_type": "LORA", "r": 2, "lora_alpha": 4, "lora_dropout": 0, "target_modules": []string{"block/*/attn/{q,v}"},
		"use_rslora": false, "base_model_name_or_path": "tiny", "base_model_hash": c["base_model_hash"],
		"adapter_name": "lora", "peftlab_version": "v0.1.0", "format_version": 1,
	})
	got, err := peft.ReadAdapterConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.FormatVersion != 1 {
		t.Errorf("FormatVersion %d, want 1", got.FormatVersion)
	}
	sc := baseCtx(t, snap)
	a, err := peft.LoadAdapter(dir, sc, tiny.Layout())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Method, cfg) {
		t.Errorf("loaded %#v, want %#v", a.Method, cfg)
	}
	if out := logits(t, sc, mustModel(t, tiny.Layout(), a)); !bitIdentical(out, want) {
		t.Errorf("outputs after loading the v1 file differ by %g", maxAbsDiff(out, want))
	}
}

// peftConfig is an adapter_config.json as Hugging Face PEFT 0.21 writes it
// for get_peft_model(twin, LoraConfig(r=2, lora_alpha=4, target_modules=["q", "v"])).
func peftConfig() map[string]any {
	return map[string]any{
		"alora_invocation_tokens": nil, "alpha_pattern": map[string]any{}, "arrow_config": nil, "auto_mapping": nil,
		"base_model_name_or_path": nil, "bias": "none", "corda_config": nil, "ensure_weight_tying": false,
		"eva_config": nil, "exclude_modules": nil, "fan_in_fan_out": false, "inference_mode": true,
		"init_lora_weights": true, "kasa_config": nil, "layer_replication": nil, "layers_pattern": nil,
		"layers_to_transform": nil, "loftq_config": map[string]any{}, "lora_alpha": 4, "lora_bias": false,
		"lora_dropout": 0.0, "lora_ga_config": nil, "megatron_config": nil, "megatron_core": "megatron.core",
		"modules_to_save": nil, "monteclora_config": nil, "peft_type": "LORA", "peft_version": "0.21.2",
		"qalora_group_size": 16, "r": 2, "rank_pattern": map[string]any{}, "revision": nil,
		"target_modules": []string{"v", "q"}, "target_parameters": nil, "task_type": nil,
		"trainable_token_indices": nil, "use_bdlora": nil, "use_dora": false, "use_qalora": false,
		"use_rslora": false, "velora_config": nil,
	}
}

// TestLoadPEFTWritten: a directory as Hugging Face PEFT writes it (no
// peftlab fields at all) loads as adapter "default", with target_modules
// matched as PEFT matches them, to the same outputs; PEFT options peftlab's
// LoRA lacks are refused unless off.
func TestLoadPEFTWritten(t *testing.T) {
	cfg := Config{Rank: 2, Alpha: 4, Targets: []string{"block/*/attn/{q,v}"}}
	dir, snap, want := savedPEFT(t, cfg)
	writeConfig(t, dir, peftConfig()) // the weights file is already PEFT's

	got, err := peft.ReadAdapterConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.FormatVersion != 0 || got.Name != peft.DefaultForeignName || got.BaseHash != "" {
		t.Errorf("ReadAdapterConfig = %+v, want format 0, name default, no hash", got)
	}
	sc := baseCtx(t, snap)
	a, err := peft.LoadAdapter(dir, sc, tiny.Layout())
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := Config{Rank: 2, Alpha: 4, Targets: []string{"**/q", "**/v"}}
	if !reflect.DeepEqual(a.Method, wantCfg) {
		t.Errorf("loaded %#v, want %#v", a.Method, wantCfg)
	}
	if out := logits(t, sc, mustModel(t, tiny.Layout(), a)); !bitIdentical(out, want) {
		t.Errorf("outputs after loading the PEFT file differ by %g", maxAbsDiff(out, want))
	}

	// A newer PEFT's options, off, change nothing and load.
	c := peftConfig()
	c["some_new_option"], c["another_new_config"] = nil, map[string]any{}
	writeConfig(t, dir, c)
	if _, err := peft.LoadAdapter(dir, baseCtx(t, snap), tiny.Layout()); err != nil {
		t.Errorf("unknown PEFT options that are off: %v", err)
	}

	for _, tc := range []struct {
		key   string
		value any
		want  string
	}{
		{"use_dora", true, "use_dora = true"},
		{"bias", "all", `bias = "all"`},
		{"lora_alpha", 0, "lora_alpha = 0"}, // PEFT scales by 0; peftlab would read the default
		{"fan_in_fan_out", true, "fan_in_fan_out"},
		{"rank_pattern", map[string]any{"q": 4}, "rank_pattern"},
		{"modules_to_save", []string{"head.cls"}, "modules_to_save"},
		{"target_modules", ".*q", "regular expression"},
		{"target_modules", []string{"nosuch"}, "matches no site"},
		{"lora_alhpa", 16, `unknown field "lora_alhpa"`},
		{"some_new_option", true, `unknown field "some_new_option"`},
	} {
		c := peftConfig()
		c[tc.key] = tc.value
		writeConfig(t, dir, c)
		_, err := peft.LoadAdapter(dir, baseCtx(t, snap), tiny.Layout())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s = %v: err %v, want it to contain %q", tc.key, tc.value, err, tc.want)
		}
	}
}
