package main

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestDriverCUDA(t *testing.T) {
	for driver, want := range map[string]int{"580.159.03": 13, "580.95": 13, "590.1.2": 13, "550.54.14": 12, "525.60.13": 12, "470.256.02": 11, "": 0} {
		if got := driverCUDA(driver); got != want {
			t.Errorf("driverCUDA(%q) = %d, want %d", driver, got, want)
		}
	}
}

// Without an NVIDIA driver, install -gpu stops before anything else with a paragraph that says
// what is missing and what to do.
func TestGPUWithoutDriver(t *testing.T) {
	if _, err := os.Stat("/proc/driver/nvidia/version"); err == nil || onPath("nvidia-smi") {
		t.Skip("this machine has an NVIDIA driver")
	}
	_, _, err := setupGPU(&logger{w: io.Discard}, 0)
	if err == nil {
		t.Fatal("setupGPU without a driver: no error")
	}
	for _, want := range []string{"no NVIDIA driver found", "nvidia-smi", "install -gpu", "pure-Go backend keeps working"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// fakeWheel lays out a pip-installed jax-cuda13-pjrt under site: the plugin and the NVIDIA
// libraries it loads (empty files).
func fakeWheel(t *testing.T, site string, cuda int, skip string) string {
	t.Helper()
	plugin := filepath.Join(site, "jax_plugins", "xla_cuda"+map[int]string{13: "13", 12: "12"}[cuda], "xla_cuda_plugin.so")
	files := append([]string{plugin}, wheelLibs[cuda].libs...)
	for i, f := range files {
		if i > 0 {
			if f == skip {
				continue
			}
			f = filepath.Join(site, f)
		}
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(site, wheelLibs[cuda].dataDir), 0o755); err != nil {
		t.Fatal(err)
	}
	return plugin
}

// Plugins are found where GoMLX and pip put them, incomplete wheels are skipped, and the
// kernel environment names the plugin by its path with the wheel's CUDA data directory.
func TestFindCUDAPlugins(t *testing.T) {
	t.Setenv("PEFTLAB_HOME", t.TempDir())
	venv := t.TempDir()
	t.Setenv("VIRTUAL_ENV", venv)
	site := filepath.Join(venv, "lib", "python3.12", "site-packages")
	plugin := fakeWheel(t, site, 13, "")
	broken := filepath.Join(t.TempDir(), "lib", "python3.11", "site-packages")
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "")
	var found *cudaPlugin
	for _, p := range findCUDAPlugins() {
		if p.Path == plugin {
			found = &p
		}
	}
	if found == nil {
		t.Fatalf("the wheel's plugin %s was not found", plugin)
	}
	if found.CUDA != 13 || !found.Wheel || found.Missing != "" || found.DataDir != filepath.Join(site, "nvidia", "cu13") {
		t.Errorf("found %+v", *found)
	}
	env := gpuEnv(*found, 13)
	for k, want := range map[string]string{"GOMLX_BACKEND": "xla:" + plugin, "GOFLAGS": "-tags=xla", "CGO_ENABLED": "1",
		"GOPJRT_CUDA_CHECKS": "0", "XLA_FLAGS": "--xla_gpu_cuda_data_dir=" + filepath.Join(site, "nvidia", "cu13"), gpuEnvMarker: "13"} {
		if env[k] != want {
			t.Errorf("gpuEnv[%s] = %q, want %q", k, env[k], want)
		}
	}
	// A GoMLX-style plugin directory named by PJRT_PLUGIN_LIBRARY_PATH comes first.
	dir := t.TempDir()
	gomlx := filepath.Join(dir, "pjrt_c_api_cuda_plugin.so")
	os.WriteFile(gomlx, nil, 0o644)
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", dir)
	ps := findCUDAPlugins()
	if len(ps) == 0 || ps[0].Path != gomlx || ps[0].Wheel {
		t.Errorf("plugins %+v: want %s first", ps, gomlx)
	}
	if p, ok := pickCUDAPlugin(ps, 13); !ok || p.Path != gomlx {
		t.Errorf("picked %+v", p)
	}
	// A wheel without its NVIDIA libraries is not picked; a CUDA 13 plugin is not picked for a
	// CUDA 12 driver.
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "")
	t.Setenv("VIRTUAL_ENV", filepath.Dir(filepath.Dir(filepath.Dir(broken))))
	fakeWheel(t, broken, 13, wheelLibs[13].libs[2])
	ps = findCUDAPlugins()
	if len(ps) == 0 || !strings.Contains(ps[0].Missing, "libcudnn") {
		t.Fatalf("plugins %+v: want the incomplete wheel flagged", ps)
	}
	if p, ok := pickCUDAPlugin(ps, 13); ok && p.Path == ps[0].Path {
		t.Errorf("picked the incomplete wheel %+v", p)
	}
	if _, ok := pickCUDAPlugin([]cudaPlugin{{Path: plugin, CUDA: 13}}, 12); ok {
		t.Error("a CUDA 13 plugin was picked for a CUDA 12 driver")
	}
}

// A GPU registration is kept by a later plain install while its plugin exists, and -cpu (or
// a GOMLX_BACKEND of the caller) switches it back.
func TestGPURegistrationKept(t *testing.T) {
	needKernel(t)
	log := &logger{w: io.Discard}
	dataDir, _ := jupyterDataDir()
	plugin := fakeWheel(t, filepath.Join(t.TempDir(), "site-packages"), 13, "")
	gpu := gpuEnv(cudaPlugin{Path: plugin, CUDA: 13, Wheel: true}, 13)
	defer registerKernel(log, false, gpuChoice{CPU: true})
	if changed, err := registerKernel(log, false, gpuChoice{Env: gpu}); err != nil || !changed {
		t.Fatalf("GPU registration: changed=%v err=%v", changed, err)
	}
	spec, _ := readKernelSpec(kernelDir(dataDir))
	if spec.Env["GOMLX_BACKEND"] != "xla:"+plugin || spec.Env["GOFLAGS"] != "-tags=xla" || spec.Env[goExperimentEnv] != goExperiment() {
		t.Errorf("GPU spec env %v", spec.Env)
	}
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || changed {
		t.Errorf("a plain registration after -gpu: changed=%v err=%v, want the GPU registration kept", changed, err)
	}
	t.Setenv("GOMLX_BACKEND", "go")
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || !changed {
		t.Errorf("GOMLX_BACKEND=go after -gpu: changed=%v err=%v, want a CPU registration", changed, err)
	}
	spec, _ = readKernelSpec(kernelDir(dataDir))
	if spec.Env[gpuEnvMarker] != "" || spec.Env["GOFLAGS"] != "" {
		t.Errorf("CPU spec keeps GPU variables: %v", spec.Env)
	}
	os.Unsetenv("GOMLX_BACKEND")
	registerKernel(log, false, gpuChoice{Env: gpu})
	if changed, err := registerKernel(log, false, gpuChoice{CPU: true}); err != nil || !changed {
		t.Errorf("-cpu after -gpu: changed=%v err=%v", changed, err)
	}
	os.Remove(plugin) // a registration whose plugin is gone is not kept
	registerKernel(log, false, gpuChoice{Env: gpu})
	if changed, err := registerKernel(log, false, gpuChoice{}); err != nil || !changed {
		t.Errorf("a plain registration after the plugin was removed: changed=%v err=%v, want CPU", changed, err)
	}
}

// The pinned CUDA 13 set: JAX's plugin and the NVIDIA libraries, each with its sha256.
func TestCUDARequirements(t *testing.T) {
	pins := map[string]string{}
	for _, m := range rePin.FindAllStringSubmatch(cuda13Requirements, -1) {
		pins[m[1]] = m[2]
	}
	for _, name := range []string{"jax-cuda13-pjrt", "nvidia-cuda-runtime", "nvidia-cublas", "nvidia-cudnn-cu13", "nvidia-cuda-nvcc", "nvidia-nvvm"} {
		if pins[name] == "" {
			t.Errorf("requirements-cuda13.txt does not pin %s", name)
		}
	}
	if n := len(regexp.MustCompile(`--hash=sha256:[0-9a-f]{64}`).FindAllString(cuda13Requirements, -1)); n < len(pins) {
		t.Errorf("%d hashes for %d pins", n, len(pins))
	}
}

// The real install (about 3 GB from PyPI), opt-in: PEFTLAB_TEST_CUDA_INSTALL=1. It checks that
// the pinned wheels install with --require-hashes and lay out a plugin the lab finds complete.
func TestInstallCUDAPlugin(t *testing.T) {
	if os.Getenv("PEFTLAB_TEST_CUDA_INSTALL") != "1" {
		t.Skip("set PEFTLAB_TEST_CUDA_INSTALL=1 to install the CUDA plugin (about 3 GB) into a temporary lab directory")
	}
	t.Setenv("PEFTLAB_HOME", t.TempDir())
	p, err := installCUDAPlugin(&logger{w: os.Stderr}, 13)
	if err != nil {
		t.Fatal(err)
	}
	if p.Missing != "" || p.CUDA != 13 || !strings.HasPrefix(p.Path, cudaVenv(13)) {
		t.Errorf("installed %+v", p)
	}
	env := gpuEnv(p, 13)
	if env["XLA_FLAGS"] == "" {
		t.Errorf("no CUDA data directory beside the installed plugin: %v", env)
	}
	for _, f := range []string{"bin/ptxas", "nvvm/libdevice/libdevice.10.bc"} {
		if _, err := os.Stat(filepath.Join(p.DataDir, f)); err != nil {
			t.Errorf("the CUDA data directory lacks %s: %v", f, err)
		}
	}
	t.Logf("installed %s", p.Path)
}
