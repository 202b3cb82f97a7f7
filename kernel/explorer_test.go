package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The explorer notebook declares the tutorials' grids word for word: the explorer finds a
// point's run by everything that determines it, so a declaration that drifted from its
// tutorial's would show every point as missing (and train new runs on request). Each variable
// 07_explorer.ipynb declares that a tutorial declares too must be identical.
func TestExplorerNotebookDeclaresTheTutorialsGrids(t *testing.T) {
	explorer := declarations(t, "07_explorer.ipynb")
	if len(explorer) == 0 {
		t.Fatal("07_explorer.ipynb declares no variables")
	}
	found := map[string]string{}
	for _, tutorial := range []string{"02_rank_and_placement.ipynb", "04_instruction_tuning.ipynb"} {
		for name, decl := range declarations(t, tutorial) {
			mine, ok := explorer[name]
			if !ok {
				continue
			}
			found[name] = tutorial
			if mine != decl {
				t.Errorf("07_explorer.ipynb declares %s differently from %s:\n--- 07:\n%s\n--- %s:\n%s", name, tutorial, mine, tutorial, decl)
			}
		}
	}
	for _, name := range []string{"parity", "adalinkGrid", "loraGrid", "methods", "regimes"} {
		if found[name] == "" {
			t.Errorf("07_explorer.ipynb or the tutorials no longer declare %s", name)
		}
	}
	for name := range explorer {
		if found[name] == "" {
			t.Errorf("07_explorer.ipynb declares %s, which no tutorial declares: explore the tutorials' grids as they declare them", name)
		}
	}
}

// topVar matches a top-level `var name` at the start of a line.
var topVar = regexp.MustCompile(`(?m)^var ([A-Za-z_][A-Za-z0-9_]*)\b`)

// declarations returns a notebook's top-level var declarations by name: each with the comment
// lines above it, up to the next blank line at the top level, from the part of each code cell
// before its `%%`.
func declarations(t *testing.T, name string) map[string]string {
	t.Helper()
	nb, err := readNotebook(filepath.Join("..", "notebooks", name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range nb.Cells {
		if !c.isCode() {
			continue
		}
		src, _, _ := strings.Cut(string(c.Source), "\n%%")
		for _, block := range strings.Split(src, "\n\n") {
			block = strings.Trim(block, "\n")
			if m := topVar.FindStringSubmatch(block); m != nil {
				if _, dup := out[m[1]]; dup {
					t.Errorf("%s declares %s twice", name, m[1])
				}
				out[m[1]] = block
			}
		}
	}
	return out
}
