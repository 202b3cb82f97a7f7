package model

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/backend"
)

// kernelTests compare the model with references computed another way (an
// independent PyTorch model, GoMLX's own gradients, LogSoftmax, the exact
// GELU): they must pass on every matrix-product kernel.
const kernelTests = "^(TestMatchesReference|TestTrainingGradientsMatchStock|TestNLL|TestGelu)$"

// TestEveryMatmulPath reruns kernelTests in a child process on the AVX2
// kernels when this machine's default is AVX-512: the Go backend picks its
// kernels once, at start-up, from the CPU and its switches, so an AVX-512
// machine would otherwise never check the AVX2 kernels that other machines
// run. (The portable loops are what a build without GOEXPERIMENT=simd runs:
// `make GOEXPERIMENT=nosimd test` checks them.)
func TestEveryMatmulPath(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the package's reference tests again per kernel")
	}
	def := backend.MatmulPath() // this process's kernels, which the package's own run checks
	paths := []struct{ env, want string }{
		{"GOMLX_SIMD_AVX512=false", "simd:avx2"},
	}
	for _, p := range paths {
		key, value, _ := strings.Cut(p.env, "=")
		t.Run(p.want, func(t *testing.T) {
			t.Setenv(key, value)
			got := backend.MatmulPath()
			if !strings.HasPrefix(got, p.want) {
				t.Skipf("%s gives %q on this machine: nothing else to check", p.env, got)
			}
			if got == def {
				t.Skipf("%s is this machine's default: the package's own run checks it", got)
			}
			cmd := exec.Command(os.Args[0], "-test.run", kernelTests, "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), p.env)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("matmul %s (%s): %v\n%s", got, p.env, err, out)
			}
			if n := strings.Count(string(out), "--- PASS"); n < 4 {
				t.Fatalf("matmul %s: %d reference tests passed, want 4\n%s", got, n, out)
			}
		})
	}
}
