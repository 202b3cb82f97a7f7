package backend

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/graph"
)

// TestMain checks, before any test calls New, that importing the package
// left GoMLX's gradient table alone.
func TestMain(m *testing.M) {
	if fastVJP != nil || FastGradients() {
		fmt.Fprintln(os.Stderr, "importing pkg/backend installed gradients before InstallGradients was called")
		os.Exit(1)
	}
	stockDot := fmt.Sprintf("%p", graph.VJPRegistration[graph.NodeTypeDotGeneral])
	InstallGradients()
	InstallGradients() // Idempotent: the saved stock entry must not be overwritten by the fast one.
	if got := fmt.Sprintf("%p", stockVJP[graph.NodeTypeDotGeneral]); got != stockDot {
		fmt.Fprintln(os.Stderr, "InstallGradients did not keep GoMLX's stock DotGeneral gradient")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func TestConfig(t *testing.T) {
	for env, want := range map[string]string{
		"":                  DefaultConfig,
		"go":                DefaultConfig,
		" go: ":             DefaultConfig,
		"go:parallelism=-1": "go:parallelism=-1",
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
	if !FastGradients() {
		t.Error("New did not install the fast gradients")
	}
	d := Describe()
	for _, want := range []string{DefaultConfig, "GoMLX v0.26.0", "fast gradients"} {
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

func TestGoMLXPinnedMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "github.com/gomlx/gomlx "+goMLXPinned+"\n") {
		t.Errorf("go.mod does not require github.com/gomlx/gomlx %s: update goMLXPinned", goMLXPinned)
	}
}
