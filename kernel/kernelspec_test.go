package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The registration is idempotent, follows the caller's GOMLX_BACKEND, and runs the stable gonb
// binary with the tools on PATH.
func TestRegisterKernel(t *testing.T) {
	needKernel(t)
	log := &logger{w: io.Discard}
	if changed, err := installTools(log, false); err != nil || changed {
		t.Errorf("second installTools: changed=%v err=%v, want a no-op", changed, err)
	}
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || changed {
		t.Errorf("second registerKernel: changed=%v err=%v, want a no-op", changed, err)
	}
	dataDir, err := jupyterDataDir()
	if err != nil {
		t.Fatal(err)
	}
	if want := os.Getenv("JUPYTER_DATA_DIR"); dataDir != want {
		t.Fatalf("jupyterDataDir() = %s, want $JUPYTER_DATA_DIR %s", dataDir, want)
	}
	check := func(backend string) {
		t.Helper()
		spec, err := readKernelSpec(kernelDir(dataDir))
		if err != nil {
			t.Fatal(err)
		}
		if spec.DisplayName != kernelDisplay || spec.Language != "go" {
			t.Errorf("spec %+v", spec)
		}
		if gonb := filepath.Join(binDir(), "gonb"); spec.Argv[0] != gonb {
			t.Errorf("argv[0] = %s, want %s", spec.Argv[0], gonb)
		}
		if !strings.Contains(strings.Join(spec.Argv, " "), "--kernel {connection_file}") {
			t.Errorf("argv %v lacks --kernel {connection_file}", spec.Argv)
		}
		if got := spec.Env["GOMLX_BACKEND"]; got != backend {
			t.Errorf("GOMLX_BACKEND = %q, want %q", got, backend)
		}
		// GoNB builds every cell with these settings: simd compiles the backend's AVX kernels.
		if got, want := spec.Env[goExperimentEnv], goExperiment(); got != want || !hasExperiment(got, "simd") {
			t.Errorf("GOEXPERIMENT = %q, want %q (with simd)", got, want)
		}
		if p := spec.Env["PATH"]; !strings.HasPrefix(p, binDir()+string(os.PathListSeparator)) || !strings.HasSuffix(p, "${PATH}") {
			t.Errorf("PATH = %q, want the bin dir first and ${PATH} last", p)
		}
		if _, err := os.Stat(filepath.Join(kernelDir(dataDir), "logo-svg.svg")); err != nil {
			t.Errorf("no logo: %v", err)
		}
		if _, err := os.Stat(filepath.Join(kernelDir(dataDir), "gonb")); err == nil {
			t.Error("a copy of the gonb binary was left in the kernel directory")
		}
	}
	check(defaultBackend)

	t.Setenv("GOMLX_BACKEND", "xla:cuda")
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || !changed {
		t.Fatalf("registerKernel with a new GOMLX_BACKEND: changed=%v err=%v, want a re-registration", changed, err)
	}
	check("xla:cuda")
	os.Unsetenv("GOMLX_BACKEND")
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || !changed {
		t.Fatalf("registerKernel back to the default: changed=%v err=%v", changed, err)
	}
	check(defaultBackend)
}

// The kernelspec's environment turns GOEXPERIMENT=simd on, keeping what a user set.
func TestKernelEnvSIMD(t *testing.T) {
	t.Setenv(goExperimentEnv, "")
	os.Unsetenv(goExperimentEnv)
	if got := kernelEnv("/usr/local/go/bin/go")[goExperimentEnv]; got != "simd" {
		t.Errorf("kernelEnv with GOEXPERIMENT unset: GOEXPERIMENT=%q, want \"simd\"", got)
	}
	for in, want := range map[string]string{
		"":                  "simd",
		"  ":                "simd",
		"simd":              "simd",
		"jsonv2":            "jsonv2,simd",
		"jsonv2,greenteagc": "jsonv2,greenteagc,simd",
		"jsonv2,simd":       "jsonv2,simd",
		"nosimd":            "nosimd", // an explicit opt-out is kept
		"jsonv2,nosimd":     "jsonv2,nosimd",
		"none":              "none,simd",
		"nosimdsomething":   "nosimdsomething,simd",
	} {
		if got := withSIMD(in); got != want {
			t.Errorf("withSIMD(%q) = %q, want %q", in, got, want)
		}
		t.Setenv(goExperimentEnv, in)
		if got := kernelEnv("/usr/local/go/bin/go")[goExperimentEnv]; got != want {
			t.Errorf("kernelEnv with GOEXPERIMENT=%q: %q, want %q", in, got, want)
		}
	}
}

// exec and lab run the kernel with simd even when the registered spec predates it, and with
// the caller's GOEXPERIMENT (plus simd) when one is set.
func TestRunEnv(t *testing.T) {
	t.Setenv("GOMLX_BACKEND", "")
	t.Setenv(goExperimentEnv, "")
	old := kernelSpec{Env: map[string]string{"GOMLX_BACKEND": "go", "PATH": "/x:${PATH}"}}
	if got := runEnv(old); got[goExperimentEnv] != "simd" || len(got) != 1 {
		t.Errorf("runEnv(spec without GOEXPERIMENT) = %v, want only GOEXPERIMENT=simd", got)
	}
	if envIncluded(runEnv(old), old.Env) {
		t.Error("a spec without GOEXPERIMENT counts as current: lab would not overlay it")
	}
	reg := kernelSpec{Env: map[string]string{"GOMLX_BACKEND": "go", goExperimentEnv: "jsonv2,simd"}}
	if got := runEnv(reg)[goExperimentEnv]; got != "jsonv2,simd" {
		t.Errorf("runEnv keeps the registered GOEXPERIMENT: got %q", got)
	}
	if !envIncluded(runEnv(reg), reg.Env) {
		t.Error("a current spec needs an overlay")
	}
	t.Setenv(goExperimentEnv, "greenteagc")
	t.Setenv("GOMLX_BACKEND", "go:parallelism=-1")
	got := runEnv(reg)
	if got[goExperimentEnv] != "greenteagc,simd" || got["GOMLX_BACKEND"] != "go:parallelism=-1" {
		t.Errorf("runEnv with the caller's settings = %v", got)
	}
}

// hasExperiment reports whether a GOEXPERIMENT list names the experiment e.
func hasExperiment(list, e string) bool {
	for _, x := range strings.Split(list, ",") {
		if strings.TrimSpace(x) == e {
			return true
		}
	}
	return false
}

func TestOverlayKernel(t *testing.T) {
	spec := kernelSpec{Argv: []string{"/bin/gonb", "--kernel", "{connection_file}"}, DisplayName: kernelDisplay,
		Env: map[string]string{"GOMLX_BACKEND": "go", "PATH": "/x:${PATH}"}}
	dir := t.TempDir()
	t.Setenv("JUPYTER_PATH", "/elsewhere")
	jp, err := overlayKernel(spec, dir, []string{"--raw_error"}, map[string]string{"GOMLX_BACKEND": "go:parallelism=-1"})
	if err != nil {
		t.Fatal(err)
	}
	if want := dir + string(os.PathListSeparator) + "/elsewhere"; jp != want {
		t.Errorf("JUPYTER_PATH = %q, want %q (the overlay first)", jp, want)
	}
	got, err := readKernelSpec(kernelDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Argv, " ") != "/bin/gonb --kernel {connection_file} --raw_error" ||
		got.Env["GOMLX_BACKEND"] != "go:parallelism=-1" || got.Env["PATH"] != "/x:${PATH}" {
		t.Errorf("overlay spec %+v", got)
	}
	if spec.Env["GOMLX_BACKEND"] != "go" || len(spec.Argv) != 3 {
		t.Error("overlayKernel modified the registered spec")
	}
}
