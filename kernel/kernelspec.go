package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/fetch"
)

// Kernel identity. Notebooks name the kernel in their metadata, so opening one in Jupyter or VS
// Code picks this kernel.
const (
	kernelName    = "peftlab"
	kernelDisplay = "Go (peftlab)"
	// defaultBackend is the GoMLX backend notebooks compute on unless GOMLX_BACKEND says
	// otherwise: the pure-Go backend, which runs everywhere without a plugin.
	defaultBackend = "go"
)

// kernelSpec is a Jupyter kernel.json (https://jupyter-client.readthedocs.io/en/latest/kernels.html).
type kernelSpec struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	InterruptMode string            `json:"interrupt_mode,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
}

// backendSetting is the GoMLX backend the kernel is registered with: the caller's
// GOMLX_BACKEND, else the pure-Go backend.
func backendSetting() string {
	if b := strings.TrimSpace(os.Getenv("GOMLX_BACKEND")); b != "" {
		return b
	}
	return defaultBackend
}

// kernelEnv is the environment the kernel runs with. GoNB finds go, goimports and gopls on PATH,
// and a Jupyter started from a desktop launcher or VS Code may not have them there, so the
// tool directories are put first; jupyter_client (7.0 and later) expands ${PATH} to the
// launching process's PATH. GOEXPERIMENT carries simd (see goexperiment.go): GoNB compiles
// every cell with `go build`, and without it the backend's matrix products fall back to scalar
// loops.
func kernelEnv(goBin string) map[string]string {
	path := binDir() + string(os.PathListSeparator) + filepath.Dir(goBin) + string(os.PathListSeparator) + "${PATH}"
	return map[string]string{
		"GOMLX_BACKEND": backendSetting(),
		goExperimentEnv: goExperiment(),
		"PATH":          path,
	}
}

// kernelDir is where the peftlab kernelspec lives under a Jupyter data directory.
func kernelDir(dataDir string) string { return filepath.Join(dataDir, "kernels", kernelName) }

// registerKernel registers the kernelspec "peftlab" in the user's Jupyter data directory
// (honouring JUPYTER_DATA_DIR). GoNB's own installer (`gonb --install`) writes a spec named
// "gonb"; it runs against a throw-away data directory and its spec is rewritten as "peftlab",
// with peftlab's display name and environment, so the user's kernel list gains exactly one
// entry. Nothing is written when the registered spec is already the wanted one.
// gpuChoice says what a registration does about XLA: use the variables of install -gpu or
// -xla-cpu, drop such a registration (install -cpu), or, when neither, keep a GPU or XLA CPU
// registration whose plugin still exists (unless the caller's GOMLX_BACKEND says otherwise), so
// that `make lab` after `install -gpu` stays on the GPU.
type gpuChoice struct {
	Env map[string]string
	CPU bool
}

func registerKernel(log *logger, force bool, gpu gpuChoice) (changed bool, err error) {
	if !toolsPresent() {
		return false, fmt.Errorf("GoNB is not built yet in %s: run `go run ./kernel install`", binDir())
	}
	goBin, err := goCommand()
	if err != nil {
		return false, err
	}
	dataDir, err := jupyterDataDir()
	if err != nil {
		return false, err
	}
	dest := kernelDir(dataDir)
	gonb := filepath.Join(binDir(), "gonb")
	env := kernelEnv(goBin)
	switch {
	case gpu.Env != nil:
		maps.Copy(env, gpu.Env)
	case !gpu.CPU && strings.TrimSpace(os.Getenv("GOMLX_BACKEND")) == "":
		if spec, err := readKernelSpec(dest); err == nil {
			if g := currentGPUEnv(spec); g != nil {
				maps.Copy(env, g)
				log.printf("kernel: keeping the GPU registration (GOMLX_BACKEND=%s, set by install -gpu; `go run ./kernel install -cpu` switches back)", g["GOMLX_BACKEND"])
			} else if x := currentXLACPUEnv(spec); x != nil {
				maps.Copy(env, x)
				log.printf("kernel: keeping the XLA CPU registration (GOMLX_BACKEND=%s, set by install -xla-cpu; `go run ./kernel install -cpu` switches back)", x["GOMLX_BACKEND"])
			}
		}
	}
	if !force {
		if spec, err := readKernelSpec(dest); err == nil && specIsCurrent(spec, gonb, env) {
			log.printf("kernel: %q already registered in %s (GOMLX_BACKEND=%s, GOEXPERIMENT=%s)", kernelName, dest, env["GOMLX_BACKEND"], env[goExperimentEnv])
			return false, nil
		}
	}

	tmpData, err := os.MkdirTemp("", "peftlab-gonb-install-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmpData)
	cmd := exec.Command(gonb, "--install", "--force_deps")
	cmd.Env = append(os.Environ(), "JUPYTER_DATA_DIR="+tmpData,
		"PATH="+binDir()+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return false, fmt.Errorf("gonb --install: %w\n%s", err, tail(out.String(), 2000))
	}
	gonbDir := filepath.Join(tmpData, "kernels", "gonb")
	spec, err := readKernelSpec(gonbDir)
	if err != nil {
		return false, fmt.Errorf("gonb --install did not write a usable kernel.json: %w\n%s", err, tail(out.String(), 2000))
	}
	// GoNB copies itself next to kernel.json when it runs from /tmp; point at the stable binary.
	spec.Argv[0] = gonb
	spec.DisplayName = kernelDisplay
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	maps.Copy(spec.Env, env)
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return false, err
	}
	// A fresh stamp each time: InstallDir then always replaces dest atomically.
	stamp := fmt.Sprintf("peftlab kernelspec\n%s\n", data)
	_ = os.Remove(filepath.Join(dest, fetch.StampFile))
	err = fetch.InstallDir(dest, stamp, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil { // temporary directories are private
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, "kernel.json"), append(data, '\n'), 0o644); err != nil {
			return err
		}
		// The logo GoNB installs (logo-svg.svg); anything else it adds besides its binary.
		entries, err := os.ReadDir(gonbDir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir() || e.Name() == "kernel.json" || e.Name() == "gonb" || strings.HasSuffix(e.Name(), "~") {
				continue
			}
			if err := fetch.CopyFile(filepath.Join(gonbDir, e.Name()), filepath.Join(tmp, e.Name())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("register kernel %q: %w", kernelName, err)
	}
	log.printf("kernel: registered %q (%s) in %s with GOMLX_BACKEND=%s GOEXPERIMENT=%s", kernelName, kernelDisplay, dest, env["GOMLX_BACKEND"], env[goExperimentEnv])
	return true, nil
}

// specIsCurrent reports whether a registered spec runs the stable gonb binary with the wanted
// display name and environment.
func specIsCurrent(spec kernelSpec, gonb string, env map[string]string) bool {
	if len(spec.Argv) == 0 || spec.Argv[0] != gonb || spec.DisplayName != kernelDisplay {
		return false
	}
	// A GPU or XLA CPU registration is not current for a pure-Go one, whose variables it also has.
	for _, marker := range []string{gpuEnvMarker, xlaCPUEnvMarker} {
		if spec.Env[marker] != "" && env[marker] == "" {
			return false
		}
	}
	return envIncluded(env, spec.Env) && slices.Contains(spec.Argv, "--kernel")
}

func readKernelSpec(dir string) (kernelSpec, error) {
	var spec kernelSpec
	data, err := os.ReadFile(filepath.Join(dir, "kernel.json"))
	if err != nil {
		return spec, err
	}
	if err := json.Unmarshal(data, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", filepath.Join(dir, "kernel.json"), err)
	}
	if len(spec.Argv) == 0 {
		return spec, fmt.Errorf("%s: empty argv", filepath.Join(dir, "kernel.json"))
	}
	return spec, nil
}

// registeredKernel returns the registered peftlab kernelspec, or an error telling how to
// register it.
func registeredKernel() (kernelSpec, error) {
	dataDir, err := jupyterDataDir()
	if err != nil {
		return kernelSpec{}, err
	}
	spec, err := readKernelSpec(kernelDir(dataDir))
	if err != nil {
		return spec, fmt.Errorf("the %q Jupyter kernel is not registered in %s (%v): run `go run ./kernel install`", kernelName, dataDir, err)
	}
	if _, err := os.Stat(spec.Argv[0]); err != nil {
		return spec, fmt.Errorf("the %q kernel runs %s, which is missing: run `go run ./kernel install`", kernelName, spec.Argv[0])
	}
	return spec, nil
}

// overlayKernel writes a variant of the registered kernelspec into a temporary directory that
// is put first on JUPYTER_PATH for one Jupyter process, so that process gets the variant without
// touching the user's registration. It is how `exec` asks for plain-text compile errors and how
// a caller's GOMLX_BACKEND or GOEXPERIMENT overrides the registered one (see runEnv). It returns
// the JUPYTER_PATH value.
func overlayKernel(spec kernelSpec, dir string, extraArgs []string, env map[string]string) (string, error) {
	spec.Argv = append(slices.Clone(spec.Argv), extraArgs...)
	spec.Env = maps.Clone(spec.Env)
	if spec.Env == nil {
		spec.Env = map[string]string{}
	}
	maps.Copy(spec.Env, env)
	kdir := kernelDir(dir)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return "", err
	}
	if err := atomicfile.WriteBytes(filepath.Join(kdir, "kernel.json"), data); err != nil {
		return "", err
	}
	path := dir
	if p := os.Getenv("JUPYTER_PATH"); p != "" {
		path += string(os.PathListSeparator) + p
	}
	return path, nil
}

// runEnv is what a kernel started by `exec` or `lab` must run with beyond the registered spec:
// the caller's GOMLX_BACKEND when set, and GOEXPERIMENT with simd (the caller's value, else the
// registered one, with simd added unless it says "nosimd"). A spec registered before peftlab set
// GOEXPERIMENT thus still builds cells with simd.
func runEnv(spec kernelSpec) map[string]string {
	env := map[string]string{}
	if b := strings.TrimSpace(os.Getenv("GOMLX_BACKEND")); b != "" {
		env["GOMLX_BACKEND"] = b
	}
	exp := spec.Env[goExperimentEnv]
	if v, ok := os.LookupEnv(goExperimentEnv); ok && strings.TrimSpace(v) != "" {
		exp = v
	}
	env[goExperimentEnv] = withSIMD(exp)
	return env
}

// toolsPresent reports whether the gonb and goimports binaries exist in binDir.
func toolsPresent() bool {
	for _, n := range []string{"gonb", "goimports"} {
		if _, err := os.Stat(filepath.Join(binDir(), n)); err != nil {
			return false
		}
	}
	return true
}
