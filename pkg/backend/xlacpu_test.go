package backend

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

func TestResolveXLACPU(t *testing.T) {
	t.Setenv(labdir.EnvHome, t.TempDir())
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "")
	// Not installed: the error says how to install it.
	_, err := resolveXLACPU("xla:cpu")
	if err == nil || !strings.Contains(err.Error(), "kernel install -xla-cpu") {
		t.Fatalf("resolveXLACPU without the plugin: %v", err)
	}
	// Other configurations pass through untouched.
	for _, cfg := range []string{"go", "go:parallelism=-1", "xla:cuda", "xla:/abs/plugin.so", "xla:cpufoo"} {
		if got, err := resolveXLACPU(cfg); err != nil || got != cfg {
			t.Errorf("resolveXLACPU(%q) = %q, %v; want it unchanged", cfg, got, err)
		}
	}
	// Installed (stamp and file as InstallXLACPU leaves them): "xla:cpu" names the file.
	err = fetch.InstallDir(xlaCPUDir(), xlaCPUWheel.Stamp(), func(tmp string) error {
		p := filepath.Join(tmp, filepath.FromSlash(xlaCPUMember))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, []byte("ELF"), 0o755)
	})
	if err != nil {
		t.Fatal(err)
	}
	p, ok := XLACPUPlugin()
	if !ok {
		t.Fatalf("XLACPUPlugin() = %q, not installed", p)
	}
	for cfg, want := range map[string]string{"xla:cpu": "xla:" + p, "xla:cpu,preallocate=false": "xla:" + p + ",preallocate=false"} {
		if got, err := resolveXLACPU(cfg); err != nil || got != want {
			t.Errorf("resolveXLACPU(%q) = %q, %v; want %q", cfg, got, err, want)
		}
	}
	// PJRT_PLUGIN_LIBRARY_PATH wins: GoMLX searches it for the "cpu" plugin.
	t.Setenv("PJRT_PLUGIN_LIBRARY_PATH", "/opt/plugins")
	if got, _ := resolveXLACPU("xla:cpu"); got != "xla:cpu" {
		t.Errorf("with PJRT_PLUGIN_LIBRARY_PATH set, resolveXLACPU(xla:cpu) = %q", got)
	}
	t.Setenv(EnvVar, "xla:cpu")
	if d := Describe(); !strings.Contains(d, "CPU: "+XLACPUWheel()) {
		t.Errorf("Describe() for xla:cpu = %q, want it to name the plugin", d)
	}
}
