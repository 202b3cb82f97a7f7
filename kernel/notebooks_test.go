package main

import (
	"os"
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
	if err := run([]string{"new", "-dir", dir, "03_my_study"}); err == nil {
		t.Error("new overwrote an existing notebook")
	}
	if err := run([]string{"new", "-dir", dir, "../escape"}); err == nil {
		t.Error("new accepted a name with a path")
	}
}
