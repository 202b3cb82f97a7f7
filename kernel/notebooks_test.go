package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Every committed notebook is stored without outputs, names the peftlab kernel, and starts by
// pinning the checkout (so it runs offline against the code beside it).
func TestCommittedNotebooks(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "notebooks", "*.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no notebooks in ../notebooks: at least 00_welcome.ipynb is expected")
	}
	for _, p := range paths {
		nb, err := readNotebook(p)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, prob := range committedProblems(nb) {
			t.Errorf("%s: %s", p, prob)
		}
	}
}

func TestCommittedProblemsCaught(t *testing.T) {
	one := 1
	good := newNotebook("t", "..")
	if probs := committedProblems(good); len(probs) > 0 {
		t.Fatalf("a new notebook has problems: %v", probs)
	}
	withOutput := newNotebook("t", "..")
	withOutput.Cells[2].Outputs = []output{stream("stdout", "x")}
	withOutput.Cells[2].ExecutionCount = &one
	otherKernel := newNotebook("t", "..")
	otherKernel.Metadata["kernelspec"] = map[string]any{"name": "gonb"}
	noPin := newNotebook("t", "..")
	noPin.Cells = append(noPin.Cells[:1], noPin.Cells[2:]...)
	for name, c := range map[string]struct {
		nb   *notebook
		want string
	}{
		"outputs":      {withOutput, "cell 3 has outputs"},
		"other kernel": {otherKernel, `kernelspec.name is "gonb"`},
		"no pin":       {noPin, "must pin the checkout"},
	} {
		probs := committedProblems(c.nb)
		if len(probs) != 1 || !strings.Contains(probs[0], c.want) {
			t.Errorf("%s: got %q, want one problem containing %q", name, probs, c.want)
		}
	}
}

// `new` writes a notebook that Jupyter's format accepts (checked by reading it back) and that
// passes the committed-notebook check, and refuses to overwrite.
func TestNewCommand(t *testing.T) {
	dir := t.TempDir()
	if err := run([]string{"new", "-dir", dir, "03_my_study"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "03_my_study.ipynb")
	nb, err := readNotebook(path)
	if err != nil {
		t.Fatal(err)
	}
	if probs := committedProblems(nb); len(probs) > 0 {
		t.Errorf("new notebook: %v", probs)
	}
	raw, _ := os.ReadFile(path)
	for _, want := range []string{`"execution_count": null`, `"outputs": []`, `"nbformat": 4`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("new notebook lacks %s:\n%s", want, raw)
		}
	}
	// nbformat's schema wants an object for every cell's metadata (nbconvert refuses null).
	if strings.Contains(string(raw), `"metadata": null`) {
		t.Errorf("new notebook has null metadata, which nbconvert refuses:\n%s", raw)
	}
	if err := run([]string{"new", "-dir", dir, "03_my_study"}); err == nil {
		t.Error("new overwrote an existing notebook")
	}
	if err := run([]string{"new", "-dir", dir, "../escape"}); err == nil {
		t.Error("new accepted a name with a path")
	}
}

// goModRequires returns the checkout's go.mod requirements (module path to version), as the go
// command reads them.
func goModRequires(t *testing.T) map[string]string {
	t.Helper()
	goBin, err := goCommand()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goBin, "mod", "edit", "-json", filepath.Join("..", "go.mod")).Output()
	if err != nil {
		t.Fatalf("go mod edit -json ../go.mod: %v", err)
	}
	var mod struct {
		Require []struct{ Path, Version string }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	reqs := map[string]string{}
	for _, r := range mod.Require {
		reqs[r.Path] = r.Version
	}
	return reqs
}

// The versions a committed notebook pins are exactly those of go.mod (GoMLX, compute, GoNB,
// go-echarts...), and 00_welcome pins the modules its cells import directly: an unpinned one
// makes GoNB ask the module proxy for @latest.
func TestNotebookPinsMatchGoMod(t *testing.T) {
	reqs := goModRequires(t)
	for _, m := range []string{"github.com/gomlx/gomlx", "github.com/gomlx/compute", "github.com/janpfeifer/gonb"} {
		if reqs[m] == "" {
			t.Fatalf("go.mod does not require %s", m)
		}
	}
	paths, err := filepath.Glob(filepath.Join("..", "notebooks", "*.ipynb"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no notebooks: %v", err)
	}
	for _, p := range paths {
		nb, err := readNotebook(p)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, prob := range pinProblems(nb, reqs) {
			t.Errorf("%s: %s", p, prob)
		}
		if filepath.Base(p) == "00_welcome.ipynb" {
			pins := notebookPins(nb)
			for _, m := range []string{"github.com/gomlx/gomlx", "github.com/gomlx/compute", "github.com/janpfeifer/gonb", "github.com/go-echarts/go-echarts/v2"} {
				if pins[m] == "" {
					t.Errorf("%s does not pin %s (want -require=%s@%s)", p, m, m, reqs[m])
				}
			}
		}
	}
}

func TestPinProblemsCaught(t *testing.T) {
	nb := newNotebook("t", "..")
	nb.Cells[1].Source = multiline(string(nb.Cells[1].Source) +
		"\n!*go mod edit -require=github.com/gomlx/gomlx@v0.26.0 -require=github.com/janpfeifer/gonb@v0.11.3 -require=example.com/other@v1.0.0")
	got := pinProblems(nb, map[string]string{"github.com/gomlx/gomlx": "v0.28.2", "github.com/janpfeifer/gonb": "v0.11.3"})
	want := []string{
		"pins example.com/other@v1.0.0, which go.mod does not require",
		"pins github.com/gomlx/gomlx@v0.26.0, go.mod requires v0.28.2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("pinProblems = %q, want %q", got, want)
	}
	if pins := notebookPins(newNotebook("t", "..")); len(pins) != 0 {
		t.Errorf("a new notebook pins %v beyond the checkout", pins)
	}
}
