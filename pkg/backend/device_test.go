package backend

import (
	"os/exec"
	"strings"
	"testing"
)

// The XLA backend on a CUDA plugin is described with the machine's GPUs; here, where there is
// no NVIDIA driver, it says none was found (on a GPU machine, it names the card).
func TestDescribeCUDA(t *testing.T) {
	for cfg, cuda := range map[string]bool{
		"xla:cuda": true, "xla:/opt/v/site-packages/jax_plugins/xla_cuda13/xla_cuda_plugin.so": true,
		"xla:/usr/local/lib/go-xla/nvidia/pjrt_c_api_cuda_plugin.so": true, "xla:cpu": false, "go": false,
	} {
		if got := isCUDA(cfg); got != cuda {
			t.Errorf("isCUDA(%q) = %v", cfg, got)
		}
	}
	t.Setenv(EnvVar, "xla:cuda,preallocate=false")
	d := Describe()
	if !strings.HasPrefix(d, "xla:cuda,preallocate=false (XLA/PJRT) — ") {
		t.Errorf("Describe() = %q", d)
	}
	if _, err := exec.LookPath("nvidia-smi"); err != nil && GPUs() == "" && !strings.Contains(d, "no NVIDIA GPU found") {
		t.Errorf("Describe() = %q on a machine without NVIDIA GPUs, want it to say so", d)
	}
	if g := GPUs(); g != "" && !strings.Contains(d, g) {
		t.Errorf("Describe() = %q does not name the GPUs %q", d, g)
	}
	t.Setenv(EnvVar, "xla:cpu")
	if d := Describe(); strings.Contains(d, "GPU") {
		t.Errorf("Describe() for xla:cpu mentions GPUs: %q", d)
	}
}

func TestTally(t *testing.T) {
	got := Tally([]string{"NVIDIA H100", "NVIDIA A10", "NVIDIA H100"})
	if want := "2× NVIDIA H100, 1× NVIDIA A10"; got != want {
		t.Errorf("Tally = %q, want %q", got, want)
	}
	if got := Tally(nil); got != "" {
		t.Errorf("Tally(nil) = %q, want empty", got)
	}
}
