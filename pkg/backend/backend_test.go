package backend

import (
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/version"
)

func TestConfig(t *testing.T) {
	for env, want := range map[string]string{
		"":                  DefaultConfig,
		"go":                DefaultConfig,
		" go: ":             DefaultConfig,
		"go:ops_sequential": "go:ops_sequential",
		"xla:cuda":          "xla:cuda",
	} {
		t.Setenv(EnvVar, env)
		if got := Config(); got != want {
			t.Errorf("%s=%q: Config() = %q, want %q", EnvVar, env, got, want)
		}
	}
}

func TestNewDefaultIsPureGo(t *testing.T) {
	t.Setenv(EnvVar, "")
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Finalize()
	if b.String() != "go" {
		t.Errorf("default backend is %q, want the pure-Go one", b.String())
	}
	d := Describe()
	for _, want := range []string{DefaultConfig, "GoMLX " + version.GoMLXPinned, "matmul " + MatmulPath()} {
		if !strings.Contains(d, want) {
			t.Errorf("Describe() = %q, missing %q", d, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	cases := map[string][]string{
		"nosuch":             {"unknown backend", "nosuch", "go"},
		"go:no_such_option":  {"go:no_such_option", "unknown configuration option"},
		"go:parallelism=abc": {"parallelism"},
	}
	if !xlaCompiled {
		cases["xla:cuda"] = []string{"-tags xla", "PJRT_PLUGIN_LIBRARY_PATH", EnvVar + "=xla:/abs/path/plugin.so"}
	} else {
		cases["xla:/nonexistent/dir/plugin.so"] = []string{"PJRT_PLUGIN_LIBRARY_PATH", "never downloads"}
	}
	for env, wants := range cases {
		t.Setenv(EnvVar, env)
		b, err := New()
		if err == nil {
			b.Finalize()
			t.Errorf("%s=%q: New succeeded, want an error", EnvVar, env)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s=%q: error %q does not mention %q", EnvVar, env, err, w)
			}
		}
	}
}

// TestMatmulPath checks the reported kernels against the build and the CPU,
// and that the backend's own switches are followed.
func TestMatmulPath(t *testing.T) {
	got := MatmulPath()
	switch {
	case !simdBuilt:
		if !strings.HasPrefix(got, "portable") || !strings.Contains(got, "GOEXPERIMENT=simd") {
			t.Errorf("built without simd: MatmulPath() = %q, want portable naming GOEXPERIMENT=simd", got)
		}
		return
	case cpuAVX512():
		if got != "simd:avx512" {
			t.Errorf("AVX-512 CPU: MatmulPath() = %q, want simd:avx512", got)
		}
	case cpuAVX2():
		if got != "simd:avx2" {
			t.Errorf("AVX2 CPU: MatmulPath() = %q, want simd:avx2", got)
		}
	}
	t.Setenv("GOMLX_SIMD_AVX512", "false")
	if cpuAVX2() {
		if got := MatmulPath(); got != "simd:avx2" {
			t.Errorf("GOMLX_SIMD_AVX512=false: MatmulPath() = %q, want simd:avx2", got)
		}
	}
	t.Setenv("GOMLX_DOT_MATMUL", "0")
	if got := MatmulPath(); !strings.HasPrefix(got, "none") {
		t.Errorf("GOMLX_DOT_MATMUL=0: MatmulPath() = %q, want none", got)
	}
}
