package peft_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/safetensors"
)

// The tests in this file check the boundary classes of issue 11: whatever
// the method, a bad input is refused with a sentence naming it, never
// accepted silently.

// boundaryMethods has one configuration of every registered method, with a
// field each knows, to check that errors list the known fields.
var boundaryMethods = []struct {
	name   string
	method peft.Method
	known  string
}{
	{"adalink", adalink.Config{Rank: 2}, "init_std"},
	{"lora", lora.Config{Rank: 2}, "lora_alpha"},
	{"prompt", prompt.Config{Tokens: 2}, "num_virtual_tokens"},
	{"full", full.Config{Preset: "head"}, "preset"},
}

// newScope returns a context holding a freshly initialised base c.
func newScope(t *testing.T, c model.Config) *mlmodel.Scope {
	t.Helper()
	scope := peftest.NewCtx(t)
	if err := model.Init(peftest.Backend(t), scope, c); err != nil {
		t.Fatal(err)
	}
	return scope
}

// saveOne attaches method as "task" to base c, builds it once and saves the
// adapter into a new directory, which it returns.
func saveOne(t *testing.T, c model.Config, method peft.Method) string {
	t.Helper()
	scope := newScope(t, c)
	m, err := peft.New(c.Layout(), peft.Adapter{Name: "task", Method: method})
	if err != nil {
		t.Fatal(err)
	}
	peftest.Forward(t, scope, c, m)
	dir := filepath.Join(t.TempDir(), "task")
	if err := peft.SaveAdapter(dir, scope, m, "task"); err != nil {
		t.Fatal(err)
	}
	return dir
}

func setConfigField(t *testing.T, dir, key string, value any) {
	t.Helper()
	path := filepath.Join(dir, peft.ConfigFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg[key] = value
	raw, _ = json.Marshal(cfg)
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, what string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s succeeded, want an error containing %q", what, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not contain %q", what, err, w)
		}
	}
}

// TestUnknownConfigFieldsEveryMethod: a misspelt field in adapter_config.json
// is refused for every method, naming the field and the method's known
// fields. (LoRA's own UnmarshalJSON used to ignore unknown keys, so a
// misspelt lora_alpha loaded as the default without a word.)
func TestUnknownConfigFieldsEveryMethod(t *testing.T) {
	c := peftest.MM
	for _, tc := range boundaryMethods {
		t.Run(tc.name, func(t *testing.T) {
			dir := saveOne(t, c, tc.method)
			if _, err := peft.LoadAdapter(dir, newScope(t, c), c.Layout()); err != nil {
				t.Fatalf("the unedited adapter does not load: %v", err)
			}
			misspelt := []string{"misspelt_field", "Rank"}
			if tc.name == "lora" {
				misspelt = append(misspelt, "lora_alhpa", "use_rs_lora")
			}
			for _, key := range misspelt {
				d := saveOne(t, c, tc.method)
				setConfigField(t, d, key, 1)
				_, err := peft.LoadAdapter(d, newScope(t, c), c.Layout())
				wantErr(t, "LoadAdapter with "+key, err, `unknown field "`+key+`"`, tc.known, "adapter_name")
				if _, err := peft.ReadAdapterConfig(d); err == nil {
					t.Errorf("ReadAdapterConfig accepts the unknown field %q", key)
				}
			}
		})
	}
}

// TestNonFiniteConfigs: NaN and ±Inf in any float field of any method's
// configuration are refused by peft.New, naming the field, before anything
// trains. (AdaLink's InitStd NaN used to fail only at save, after training;
// +Inf surfaced as a NaN evaluation loss.)
func TestNonFiniteConfigs(t *testing.T) {
	l := peftest.MM.Layout()
	cases := []struct {
		method peft.Method
		field  string
	}{
		{adalink.Config{Rank: 2, InitStd: math.NaN()}, "init_std"},
		{adalink.Config{Rank: 2, InitStd: math.Inf(1)}, "init_std"},
		{&adalink.Config{Rank: 2, InitStd: math.Inf(1)}, "init_std"},
		{lora.Config{Rank: 2, Alpha: math.Inf(1)}, "lora_alpha"},
		{lora.Config{Rank: 2, Dropout: math.NaN()}, "lora_dropout"},
	}
	for _, tc := range cases {
		_, err := peft.New(l, peft.Adapter{Name: "task", Method: tc.method})
		wantErr(t, "New("+tc.method.Type()+")", err, `"task"`, tc.field)
	}
	if _, err := peft.New(l, peft.Adapter{Name: "task", Method: adalink.Config{Rank: 2, InitStd: 0.02}}); err != nil {
		t.Errorf("a finite InitStd is refused: %v", err)
	}
}

// TestNonFiniteWeights: SaveAdapter refuses NaN/Inf weights and writes
// nothing; LoadAdapter refuses a file holding them (with a matching
// checksum, as a save of a diverged run would have written) and changes
// nothing.
func TestNonFiniteWeights(t *testing.T) {
	c := peftest.Text
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
		scope := newScope(t, c)
		m, err := peft.New(c.Layout(), peft.Adapter{Name: "task", Method: adalink.Config{Rank: 2}})
		if err != nil {
			t.Fatal(err)
		}
		peftest.Forward(t, scope, c, m)
		v := scope.Store().GetVariable("/adapters/task/input/text/B")
		if v == nil {
			t.Fatal("no /adapters/task/input/text/B")
		}
		vals := peftest.Flat(t, v.MustValue())
		vals[3] = bad
		if err := v.SetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...)); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "task")
		wantErr(t, "SaveAdapter of a NaN/Inf weight", peft.SaveAdapter(dir, scope, m, "task"), "input/text/B", "finite")
		if _, err := os.Stat(dir); err == nil {
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("SaveAdapter refused the weights but wrote %d files", len(entries))
			}
		}

		// A file holding the value, with a matching checksum.
		good := saveOne(t, c, adalink.Config{Rank: 2})
		wpath := filepath.Join(good, peft.WeightsFile)
		st, err := safetensors.ReadFile(wpath)
		if err != nil {
			t.Fatal(err)
		}
		for i := range st.Tensors {
			if st.Tensors[i].Name == "input/text/A" {
				tt, err := st.Tensors[i].ToTensor()
				if err != nil {
					t.Fatal(err)
				}
				vals := peftest.Flat(t, tt)
				vals[0] = bad
				nt, err := safetensors.FromTensor("input/text/A", tensors.FromFlatDataAndDimensions(vals, tt.Shape().Dimensions...))
				if err != nil {
					t.Fatal(err)
				}
				st.Tensors[i] = nt
			}
		}
		data, err := st.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(wpath, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		setConfigField(t, good, "adapter_model_sha256", hex.EncodeToString(sum[:]))
		fresh := newScope(t, c)
		_, err = peft.LoadAdapter(good, fresh, c.Layout())
		wantErr(t, "LoadAdapter of a NaN/Inf weight", err, "input/text/A", "finite")
		if fresh.Store().GetVariable("/adapters/task/input/text/A") != nil {
			t.Error("LoadAdapter refused the file but created its variables")
		}
	}
}

// TestNamesEveryEntryPoint: a name that is not a safe path element is
// refused by every function taking one, not only by peft.New. ("..", read
// from a file, used to pass LoadAdapter and put weights under /adapters/..)
func TestNamesEveryEntryPoint(t *testing.T) {
	c := peftest.Text
	for _, name := range []string{"..", ".", "", "a/b", ".hidden", "a b", strings.Repeat("x", peft.MaxNameLen+1)} {
		if err := peft.CheckName(name); err == nil {
			t.Errorf("CheckName(%q) accepts it", name)
		}
		if _, err := peft.New(c.Layout(), peft.Adapter{Name: name, Method: adalink.Config{Rank: 2}}); err == nil {
			t.Errorf("New accepts adapter name %q", name)
		}
		if name == "" || len(name) > 20 {
			continue
		}
		dir := saveOne(t, c, adalink.Config{Rank: 2})
		setConfigField(t, dir, "adapter_name", name)
		fresh := newScope(t, c)
		_, err := peft.LoadAdapter(dir, fresh, c.Layout())
		wantErr(t, "LoadAdapter of adapter_name "+name, err, "adapter_name", "not a valid adapter name")
		for v := range fresh.IterVariables() {
			if strings.HasPrefix(v.Path(), peft.AdapterScope) {
				t.Errorf("LoadAdapter refused %q but created %s", name, v.Path())
			}
		}
	}
	for _, name := range []string{"task", "sst-2", "v1.2", "_x"} {
		if err := peft.CheckName(name); err != nil {
			t.Errorf("CheckName(%q): %v", name, err)
		}
	}
	scope := newScope(t, c)
	m, _ := peft.New(c.Layout(), peft.Adapter{Name: "task", Method: adalink.Config{Rank: 2}})
	peftest.Forward(t, scope, c, m)
	wantErr(t, "SaveAdapter(\"..\")", peft.SaveAdapter(t.TempDir(), scope, m, ".."), "not a valid adapter name")
}

// TestWrongBaseSaysWhich: an adapter loaded onto another base is refused
// for being on another base, with both names, not for the weights that
// other base happens to miss.
func TestWrongBaseSaysWhich(t *testing.T) {
	dir := saveOne(t, peftest.Text, adalink.Config{Rank: 2})
	_, err := peft.LoadAdapter(dir, newScope(t, peftest.MM), peftest.MM.Layout())
	wantErr(t, "LoadAdapter onto another base", err,
		`trained on base model "`+peftest.Text.ModelName()+`", this base is "`+peftest.MM.ModelName()+`"`)
	dir = saveOne(t, peftest.Text, lora.Config{Rank: 2, Targets: []string{"block/1/attn/q"}})
	small := peftest.Text
	small.Name, small.Blocks = "tiny-one-block", 1
	_, err = peft.LoadAdapter(dir, newScope(t, small), small.Layout())
	wantErr(t, "LoadAdapter onto a base without the site", err, `this base is "`+small.ModelName()+`"`)
}
