package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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
		{"loop.ipynb", "FAILED cell 2: timeout: ran past the cell time limit of 4s"},
		{"tset.ipynb", "FAILED cell 2: unknown special command %tset"},
		{"failprint.ipynb", ""}, // ok: program output starting with FAIL is not a failure
	}
	var paths []string
	for _, c := range cases {
		paths = append(paths, filepath.Join("testdata", c.notebook))
	}
	out := t.TempDir()
	opt := execOptions{OutDir: out, CellTimeout: 4 * time.Second}
	results, err := execNotebooks(context.Background(), &logger{w: io.Discard}, paths, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(cases) {
		t.Fatalf("got %d results for %d notebooks", len(results), len(cases))
	}
	for i, c := range cases {
		r := results[i]
		if left := runProcesses(0, r.marker); len(left) > 0 {
			t.Errorf("%s: %d processes of the run still running after exec returned: %v", c.notebook, len(left), describe(left))
			killRun(0, r.marker)
		}
		if c.want == "" {
			if !r.ok() {
				t.Errorf("%s: %s, want ok", c.notebook, r.line())
			}
			continue
		}
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

// A notebook that outlives its whole-notebook limit is stopped with every process it started:
// nbconvert, the GoNB kernel, gopls and the looping cell program (killing nbconvert alone
// left the others running at full CPU).
func TestExecNotebookTimeoutStopsEverything(t *testing.T) {
	needKernel(t)
	opt := execOptions{OutDir: t.TempDir(), CellTimeout: 5 * time.Minute, NotebookTimeout: 25 * time.Second}
	start := time.Now()
	results, err := execNotebooks(context.Background(), &logger{w: io.Discard}, []string{filepath.Join("testdata", "loop.ipynb")}, opt)
	if err != nil {
		t.Fatal(err)
	}
	r := results[0]
	if !strings.Contains(r.line(), "timeout: the whole notebook ran past 25s") {
		t.Errorf("summary %q, want the whole-notebook timeout", r.line())
	}
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("exec took %s with a 25s notebook limit", d)
	}
	if left := runProcesses(0, r.marker); len(left) > 0 {
		t.Errorf("%d processes of the run still running: %v", len(left), describe(left))
		killRun(0, r.marker)
	}
}

// describe names processes by their command line, for failure messages.
func describe(pids []int) []string {
	var out []string
	for _, pid := range pids {
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")))
	}
	return out
}

func TestExecRefusesBadInput(t *testing.T) {
	var exit exitError
	if err := run([]string{"exec"}); !errors.As(err, &exit) || exit.code != 2 {
		t.Errorf("exec with no notebooks: got %v, want usage error (status 2)", err)
	}
	// nbclient reads a limit under 1s as 0, and 0 or less as no limit at all.
	nb := filepath.Join("testdata", "pass.ipynb")
	for _, args := range [][]string{{"-timeout", "500ms"}, {"-timeout", "0"}, {"-timeout", "-1s"}, {"-notebook-timeout", "-5s"}} {
		err := run(append(append([]string{"exec", "-no-warm"}, args...), nb))
		if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "at least 1s") {
			t.Errorf("exec %v: got %v, want a usage error saying the limit must be at least 1s", args, err)
		}
	}
	if _, err := execNotebooks(context.Background(), &logger{w: io.Discard}, []string{nb}, execOptions{OutDir: t.TempDir()}); err == nil ||
		!strings.Contains(err.Error(), "at least 1s") {
		t.Errorf("execNotebooks without a cell limit: %v, want it refused", err)
	}
	if got := nbconvertArgs(6, "x.ipynb", "out", "x", 1500*time.Millisecond); !slices.Contains(got, "--ExecutePreprocessor.timeout=2") {
		t.Errorf("a 1.5s limit is passed as %v, want 2 (rounded up)", got)
	}
	r := execNotebook(context.Background(), nbconvert{}, filepath.Join(t.TempDir(), "missing.ipynb"), "", execOptions{OutDir: t.TempDir()})
	if r.ok() || !strings.Contains(r.line(), "FAILED") {
		t.Errorf("a missing notebook: %q, want FAILED", r.line())
	}
}
