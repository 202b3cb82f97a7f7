// Package interop proves peftlab's LoRA adapter files against Hugging Face
// PEFT itself: `make interop` installs PyTorch, PEFT and safetensors
// (install.sh) and runs TestInterop with PEFTLAB_INTEROP_PYTHON set to that
// venv's python; without it the test skips, so `go test ./...` needs no
// Python.
package interop

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/safetensors"
	"github.com/peftlab/peftlab/pkg/site"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// EnvPython names the python of the interop venv (bench/interop/install.sh).
const EnvPython = "PEFTLAB_INTEROP_PYTHON"

// base is the shipped "text" base (pkg/bases), set by TestInterop.
var base model.Config

const (
	logitTol  = 1e-4
	weightTol = 1e-5
)

func python(t *testing.T) string {
	py := os.Getenv(EnvPython)
	if py == "" {
		t.Skipf("%s is not set: run `make interop` (installs PyTorch and Hugging Face PEFT into a venv)", EnvPython)
	}
	return py
}

// runPy runs interop.py and logs its output, line by line.
func runPy(t *testing.T, py string, args ...string) {
	t.Helper()
	cmd := exec.Command(py, append([]string{"interop.py"}, args...)...)
	cmd.Env = append(os.Environ(), "HF_HUB_OFFLINE=1", "TRANSFORMERS_OFFLINE=1", "OMP_NUM_THREADS=2", "OMP_WAIT_POLICY=PASSIVE",
		"PYTHONWARNINGS=ignore::UserWarning")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		t.Log("python: " + line)
	}
	if err != nil {
		t.Fatalf("interop.py %s: %v", strings.Join(args, " "), err)
	}
}

func tokens() *tensors.Tensor {
	return tensors.FromValue([][]int32{{3, 17, 1, 320, 5, 9, 2021, 2}, {4, 2, 39, 800, 11, 0, 0, 0}, {7, 7, 1300, 1, 0, 0, 0, 0}})
}

// logits runs model.LMLogits of base with hook on sc, in a fresh executor.
func logits(t *testing.T, sc *mlmodel.Scope, hook site.Hook) []float32 {
	t.Helper()
	exec, err := mlmodel.NewExec(backendtest.Backend(t), sc.Store(), func(sc *mlmodel.Scope, tok *graph.Node) *graph.Node {
		return model.LMLogits(sc, base, hook, model.Inputs{Tokens: tok})
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(tokens())
	if err != nil {
		t.Fatal(err)
	}
	return flat(t, out[0])
}

func flat(t *testing.T, x *tensors.Tensor) []float32 {
	t.Helper()
	v, err := tensors.CopyFlatData[float32](x)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return 1e300
	}
	m := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if !(d <= m && -d <= m) {
			m = max(d, -d)
		}
	}
	return m
}

func put(t *testing.T, f *safetensors.File, name string, x *tensors.Tensor) {
	t.Helper()
	st, err := safetensors.FromTensor(name, x)
	if err != nil {
		t.Fatal(err)
	}
	f.Tensors = append(f.Tensors, st)
}

func value(t *testing.T, sc *mlmodel.Scope, path string) *tensors.Tensor {
	t.Helper()
	v := sc.Store().GetVariable(path)
	if v == nil {
		t.Fatalf("no variable %s", path)
	}
	x, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// writeShared writes model.json, base.safetensors and batch.safetensors.
func writeShared(t *testing.T, dir string, sc *mlmodel.Scope) {
	t.Helper()
	cfg, _ := json.Marshal(base)
	if err := os.WriteFile(filepath.Join(dir, "model.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	weights := &safetensors.File{}
	for _, p := range base.Layout().Params {
		put(t, weights, p.Name, value(t, sc, p.Name))
	}
	batch := &safetensors.File{}
	put(t, batch, "tokens", tokens())
	for name, f := range map[string]*safetensors.File{"base.safetensors": weights, "batch.safetensors": batch} {
		if err := safetensors.WriteFile(filepath.Join(dir, name), f); err != nil {
			t.Fatal(err)
		}
	}
}

// trainBatch is a language-modelling batch of random tokens.
func trainBatch() trainer.Batch {
	r := rand.New(rand.NewPCG(5, 6))
	const n, T = 4, 8
	tok, tgt := make([]int32, n*T), make([]int32, n*T)
	for i := range tok {
		tok[i] = 1 + r.Int32N(int32(base.Vocab-1))
	}
	for i := range tgt {
		if (i+1)%T != 0 {
			tgt[i] = tok[i+1]
		}
	}
	return trainer.Batch{Tokens: tensors.FromFlatDataAndDimensions(tok, n, T), Targets: tensors.FromFlatDataAndDimensions(tgt, n, T)}
}

// TestInterop: (a) a LoRA adapter peftlab trained and saved loads in PEFT
// with PeftModel.from_pretrained and gives peftlab's logits, and PEFT's
// merge_and_unload gives peftlab's lora.Merge; (b) a LoRA adapter PEFT
// trained and saved with save_pretrained loads in peftlab with
// peft.LoadAdapter and gives PEFT's logits, and lora.Merge gives PEFT's
// merge_and_unload.
func TestInterop(t *testing.T) {
	py := python(t)
	b := backendtest.Backend(t)
	dir := t.TempDir()
	if d := os.Getenv("PEFTLAB_INTEROP_DIR"); d != "" { // keep the files to look at
		dir = d
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := bases.Load(bases.Text)
	if err != nil {
		t.Fatal(err)
	}
	base, sc := loaded.Config, loaded.Scope
	writeShared(t, dir, sc)
	l := base.Layout()

	t.Run("peftlab-to-PEFT", func(t *testing.T) {
		cfg := lora.Config{Rank: 4, Alpha: 8, Targets: []string{"block/*/attn/{q,v}", "block/1/mlp/up"}}
		m, err := peft.New(l, peft.Adapter{Name: "task", Method: cfg})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := trainer.New(b, sc, base, m, trainer.Config{Steps: 5, BatchSize: 4, LR: 1e-2, Seed: 3})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if _, err := tr.Step(trainBatch()); err != nil {
				t.Fatal(err)
			}
		}
		bmax := 0.0
		for v := range sc.Store().IterVariables() {
			if strings.HasSuffix(v.Path(), "/"+lora.VarB) {
				for _, x := range flat(t, v.MustValue()) {
					bmax = max(bmax, float64(max(x, -x)))
				}
			}
		}
		if bmax == 0 {
			t.Fatal("training left every lora_B at zero: the check would prove nothing")
		}
		t.Logf("peftlab trained 5 steps; max |lora_B| = %.3g", bmax)
		if err := peft.SaveAdapter(filepath.Join(dir, "adapter"), sc, m, "task"); err != nil {
			t.Fatal(err)
		}
		want := &safetensors.File{}
		put(t, want, "logits", tensors.FromFlatDataAndDimensions(logits(t, sc, m), 3, 8, base.Vocab))
		if err := lora.Merge(sc, m, "task"); err != nil {
			t.Fatal(err)
		}
		put(t, want, "merged_logits", tensors.FromFlatDataAndDimensions(logits(t, sc, m), 3, 8, base.Vocab))
		res, _ := m.Resolution("task")
		for _, s := range res.Sites {
			put(t, want, "merged/"+s.Name, value(t, sc, s.Scope()+"/weights"))
		}
		if err := lora.Unmerge(sc, m, "task"); err != nil {
			t.Fatal(err)
		}
		if err := safetensors.WriteFile(filepath.Join(dir, "peftlab.safetensors"), want); err != nil {
			t.Fatal(err)
		}
		runPy(t, py, "load", dir)
	})

	t.Run("PEFT-to-peftlab", func(t *testing.T) {
		runPy(t, py, "train", dir)
		got, err := safetensors.ReadFile(filepath.Join(dir, "peft.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		want := func(name string) []float32 {
			st, ok := got.Tensor(name)
			if !ok {
				t.Fatalf("peft.safetensors has no %s: %v", name, got.Names())
			}
			x, err := st.ToTensor()
			if err != nil {
				t.Fatal(err)
			}
			return flat(t, x)
		}
		// A fresh context with only the base weights, as a user's would be.
		sc := mlmodel.NewStore().RootScope()
		bf, err := safetensors.ReadFile(filepath.Join(dir, "base.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range bf.Tensors {
			x, err := st.ToTensor()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sc.Store().CreateVariable(st.Name, x); err != nil {
				t.Fatal(err)
			}
		}
		a, err := peft.LoadAdapter(filepath.Join(dir, "peft_adapter"), sc, l)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("loaded PEFT's adapter as %q: %v", a.Name, a.Method)
		m, err := peft.New(l, a)
		if err != nil {
			t.Fatal(err)
		}
		res, _ := m.Resolution(a.Name)
		var sites []string
		for _, s := range res.Sites {
			sites = append(sites, s.Name)
		}
		var wantSites []string // PEFT's target_modules ["q", "v", "down"] in every block
		for i := range base.Blocks {
			for _, s := range []string{"attn/q", "attn/v", "mlp/down"} {
				wantSites = append(wantSites, model.BlockSite(i, s))
			}
		}
		if !slices.Equal(sites, wantSites) {
			t.Errorf("adapted sites %v, want %v", sites, wantSites)
		}
		check := func(what string, d, tol float64) {
			t.Helper()
			verdict := "PASS"
			if d > tol {
				verdict = "FAIL"
				t.Errorf("%s: max |diff| = %.3g, over %g", what, d, tol)
			}
			t.Logf("%s %s: max |diff| = %.3g (tolerance %g)", verdict, what, d, tol)
		}
		baseLogits := logits(t, sc, nil)
		if d := maxDiff(want("logits"), baseLogits); d < 1e-3 {
			t.Fatalf("PEFT's adapter moves the logits by only %g: the check would prove nothing", d)
		}
		check("(b) PEFT adapter loaded by peft.LoadAdapter: logits vs PEFT's", maxDiff(logits(t, sc, m), want("logits")), logitTol)
		if err := lora.Merge(sc, m, a.Name); err != nil {
			t.Fatal(err)
		}
		check("(c) peftlab lora.Merge logits vs PEFT merge_and_unload logits", maxDiff(logits(t, sc, m), want("merged_logits")), logitTol)
		wd := 0.0
		for _, s := range res.Sites {
			wd = max(wd, maxDiff(flat(t, value(t, sc, s.Scope()+"/weights")), want("merged/"+s.Name)))
		}
		check("(c) peftlab lora.Merge weights vs PEFT merge_and_unload weights", wd, weightTol)
	})
}
