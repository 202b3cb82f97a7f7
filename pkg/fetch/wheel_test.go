package fetch

import (
	"archive/zip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeWheel writes a wheel (a zip) holding files and returns its path and sha256.
func makeWheel(t *testing.T, dir string, files map[string]string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, "demo_plugin-1.0-py3-none-any.whl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for name, body := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	sum, err := SHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, sum
}

// fakePip makes $PEFTLAB_PYTHON a script that plays `python -m pip download ... -d DIR` by
// copying wheel into DIR, and records its arguments.
func fakePip(t *testing.T, wheel string) (argsFile string) {
	t.Helper()
	dir := t.TempDir()
	argsFile = filepath.Join(dir, "args")
	script := filepath.Join(dir, "python")
	body := "#!/bin/sh\necho \"$@\" > " + argsFile + "\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then mkdir -p \"$2\"; cp " + wheel + " \"$2\"/; fi; shift; done\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PEFTLAB_PYTHON", script)
	return argsFile
}

func TestWheelFetch(t *testing.T) {
	wheel, sum := makeWheel(t, t.TempDir(), map[string]string{
		"demo/lib/plugin.so":                 "ELF...",
		"demo/__init__.py":                   "",
		"demo_plugin-1.0.dist-info/METADATA": "Name: demo-plugin",
	})
	args := fakePip(t, wheel)
	keep := "demo/lib/plugin.so"
	w := Wheel{Name: "demo-plugin", Version: "1.0", SHA256: sum, Keep: func(p string) bool { return p == keep }, Selection: keep}
	dest := filepath.Join(t.TempDir(), "demo")
	if err := w.Fetch(dest); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dest, "demo", "lib", "plugin.so"))
	if err != nil || string(got) != "ELF..." {
		t.Fatalf("plugin.so = %q, %v", got, err)
	}
	if st, _ := os.Stat(filepath.Join(dest, "demo", "lib", "plugin.so")); st.Mode()&0o100 == 0 {
		t.Errorf("a shared library is extracted executable, got mode %v", st.Mode())
	}
	if _, err := os.Stat(filepath.Join(dest, "demo", "__init__.py")); err == nil {
		t.Errorf("a file outside the selection was extracted")
	}
	if !w.Installed(dest) {
		t.Errorf("Installed is false after Fetch")
	}
	a, _ := os.ReadFile(args)
	for _, want := range []string{"-m pip download", "--no-deps", "--require-hashes", "--only-binary=:all:"} {
		if !strings.Contains(string(a), want) {
			t.Errorf("pip was run without %q: %s", want, a)
		}
	}
	// A second call is a no-op: pip is not run again.
	os.Remove(args)
	if err := w.Fetch(dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(args); err == nil {
		t.Errorf("Fetch ran pip again for an installed wheel")
	}
}

// A wheel whose digest is not the pinned one is refused, and nothing is installed.
func TestWheelFetchRefusesAnotherFile(t *testing.T) {
	wheel, _ := makeWheel(t, t.TempDir(), map[string]string{"demo/plugin.so": "substituted"})
	fakePip(t, wheel)
	w := Wheel{Name: "demo-plugin", Version: "1.0", SHA256: strings.Repeat("ab", 32)}
	dest := filepath.Join(t.TempDir(), "demo")
	err := w.Fetch(dest)
	if err == nil || !strings.Contains(err.Error(), "not the pinned file") {
		t.Fatalf("Fetch of a substituted wheel: %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Errorf("a refused wheel left %s behind", dest)
	}
}

func TestWheelExtractRejects(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"a path out of the destination": {"../evil.so": "x"},
		"nothing selected":              {"other/file": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			wheel, sum := makeWheel(t, t.TempDir(), files)
			w := Wheel{Name: "demo-plugin", Version: "1.0", SHA256: sum, Selection: "*.so",
				Keep: func(p string) bool { return strings.HasSuffix(p, ".so") }}
			if err := w.extract(wheel, t.TempDir()); err == nil {
				t.Errorf("extract accepted a wheel with %s", name)
			}
		})
	}
}
