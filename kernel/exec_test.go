package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Each planted notebook fails in exactly one way that nbconvert alone reports as success
// (except the compile error and the timeout), and exec must name that failure.
func TestExecCatchesPlantedFailures(t *testing.T) {
	needKernel(t)
	cases := []struct{ notebook, want string }{
		{"panic.ipynb", "FAILED cell 2: panic: runtime error: index out of range [3] with length 0"},
		{"exit.ipynb", "FAILED cell 2: exit status 3"},
		{"compile.ipynb", "FAILED cell 2: compile error: undefined: nosuchThing"},
		{"failtest.ipynb", "FAILED cell 2: --- FAIL: TestPlanted"},
		{"shellfail.ipynb", "FAILED cell 2: exit status 1"},
		{"timeout.ipynb", "FAILED cell 2: timeout: ran past the cell time limit of 4s"},
	}
	var paths []string
	for _, c := range cases {
		paths = append(paths, filepath.Join("testdata", c.notebook))
	}
	out := t.TempDir()
	opt := execOptions{OutDir: out, CellTimeout: 4 * time.Second}
	results, err := execNotebooks(&logger{w: io.Discard}, paths, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(cases) {
		t.Fatalf("got %d results for %d notebooks", len(results), len(cases))
	}
	for i, c := range cases {
		r := results[i]
		if r.ok() {
			t.Errorf("%s: exec reported ok, want a failure", c.notebook)
			continue
		}
		if line := r.line(); !strings.Contains(line, c.want) {
			t.Errorf("%s: summary line\n  %s\nwant it to contain\n  %s", c.notebook, line, c.want)
		}
		if r.Cells != 1 {
			t.Errorf("%s: %d code cells counted, want 1", c.notebook, r.Cells)
		}
	}
}

// Through the command line: a passing notebook alone exits 0 and leaves the executed notebook
// and its HTML export; adding a failing one makes the whole run exit 1.
func TestExecCommandExitStatus(t *testing.T) {
	needKernel(t)
	out := t.TempDir()
	if err := run([]string{"exec", "-no-warm", "-out", out, filepath.Join("testdata", "pass.ipynb")}); err != nil {
		t.Fatalf("exec pass.ipynb: %v", err)
	}
	nb, err := readNotebook(filepath.Join(out, "pass.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	for _, c := range nb.Cells {
		for _, o := range c.Outputs {
			if o.OutputType == "stream" && o.Name == "stdout" {
				stdout.WriteString(string(o.Text))
			}
		}
	}
	// The cell imported the checkout's pkg/site, the kernel saw fast mode and the backend, and GoNB
	// built the cell with GOEXPERIMENT=simd (the backend's AVX matrix products).
	for _, want := range []string{"site kind: linear", "fast: 1", "backend: go", "shell ok", "PASS",
		"built with GOEXPERIMENT: " + goExperiment() + "\n"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("executed pass.ipynb stdout lacks %q:\n%s", want, stdout.String())
		}
	}
	if st, err := os.Stat(filepath.Join(out, "pass.html")); err != nil || st.Size() == 0 {
		t.Errorf("no HTML export: %v", err)
	}

	err = run([]string{"exec", "-no-warm", "-no-html", "-out", out,
		filepath.Join("testdata", "pass.ipynb"), filepath.Join("testdata", "exit.ipynb")})
	var exit exitError
	if !errors.As(err, &exit) || exit.code != 1 || !strings.Contains(exit.msg, "1 of 2 notebooks FAILED") {
		t.Errorf("exec pass.ipynb exit.ipynb: got %v, want exit status 1 and \"1 of 2 notebooks FAILED\"", err)
	}
}

func TestExecRefusesBadInput(t *testing.T) {
	var exit exitError
	if err := run([]string{"exec"}); !errors.As(err, &exit) || exit.code != 2 {
		t.Errorf("exec with no notebooks: got %v, want usage error (status 2)", err)
	}
	r := execNotebook(filepath.Join(t.TempDir(), "missing.ipynb"), "", execOptions{OutDir: t.TempDir()})
	if r.ok() || !strings.Contains(r.line(), "FAILED") {
		t.Errorf("a missing notebook: %q, want FAILED", r.line())
	}
}
