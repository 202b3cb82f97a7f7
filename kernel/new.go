package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/peftlab/peftlab/pkg/atomicfile"
)

// The first code cell of every notebook. GoNB builds each cell in a throw-away module; this
// cell points that module's requirement on peftlab at the checkout holding the notebook
// (${GONB_DIR} is the notebook's directory), so cells import the code beside them, offline, and
// every other module comes at the version peftlab's go.mod pins. Without it, importing a peftlab
// package makes GoNB run `go get` for @latest, which fails (and would not be this checkout).
// A module peftlab does not already require must be pinned here too (-require=module@vX.Y.Z).
const (
	pinReplace = "!*go mod edit -replace=github.com/peftlab/peftlab=${GONB_DIR}/"
	pinRequire = "-require=github.com/peftlab/peftlab@v0.0.0-00010101000000-000000000000"
)

// pinCell returns the first-cell source for a notebook whose directory is rel (slash-separated,
// e.g. "..") away from the checkout root.
func pinCell(rel string) string {
	return "// Build against the peftlab checkout beside this notebook, offline (see README, \"Notebooks\").\n" +
		pinReplace + rel + " " + pinRequire
}

// newNotebook returns a notebook with a title, the pinning cell and a first code cell, which
// shows the mode and backend.Describe(): the backend, its matrix-product kernels (simd:avx512,
// simd:avx2 or portable) and the GoMLX version.
func newNotebook(title, rel string) *notebook {
	code := "import (\n\t\"github.com/peftlab/peftlab/pkg/backend\"\n\t\"github.com/peftlab/peftlab/pkg/mode\"\n)\n\n%%\n" +
		"fmt.Println(\"fast mode:\", mode.Fast(), \"| backend:\", backend.Describe())"
	return &notebook{
		Cells: []cell{
			{ID: "title", CellType: "markdown", Source: multiline("# " + title + "\n\nWhat this notebook shows, in one paragraph.")},
			{ID: "pin", CellType: "code", Source: multiline(pinCell(rel))},
			{ID: "start", CellType: "code", Source: multiline(code)},
		},
		Metadata: map[string]any{
			"kernelspec":    map[string]any{"name": kernelName, "display_name": kernelDisplay, "language": "go"},
			"language_info": map[string]any{"name": "go"},
		},
		NBFormat:      4,
		NBFormatMinor: 5,
	}
}

func cmdNew(args []string) error {
	fs := flag.NewFlagSet("new", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory for the notebook (default: notebooks/ of the checkout)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./kernel new [-dir DIR] NAME\n\n"+
			"Creates DIR/NAME.ipynb for the \""+kernelName+"\" kernel, starting with the cell that builds against this checkout.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitError{code: 2, msg: "kernel new: want exactly one NAME"}
	}
	name := strings.TrimSuffix(fs.Arg(0), ".ipynb")
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("notebook name %q: want a plain file name such as 03_lora_sweep", fs.Arg(0))
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	root := moduleRoot(wd)
	if root == "" {
		return fmt.Errorf("not inside the peftlab checkout: run from the checkout")
	}
	if *dir == "" {
		*dir = filepath.Join(root, "notebooks")
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(absDir, root)
	if err != nil {
		return fmt.Errorf("-dir %s is not inside the checkout %s", absDir, root)
	}
	if err := os.MkdirAll(absDir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(absDir, name+".ipynb")
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s already exists", path)
	}
	data, err := newNotebook(strings.ReplaceAll(name, "_", " "), filepath.ToSlash(rel)).encode()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, data); err != nil {
		return err
	}
	fmt.Println("created", path)
	return nil
}

// committedProblems lists what is wrong with a notebook meant to be committed: outputs or
// execution counts left in (they bloat diffs and go stale), a kernel other than peftlab, or a
// first code cell that does not build against the checkout.
func committedProblems(nb *notebook) []string {
	var probs []string
	ks, _ := nb.Metadata["kernelspec"].(map[string]any)
	if name, _ := ks["name"].(string); name != kernelName {
		probs = append(probs, fmt.Sprintf("metadata.kernelspec.name is %q, want %q", name, kernelName))
	}
	first := true
	for i, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		if len(c.Outputs) > 0 || c.ExecutionCount != nil {
			probs = append(probs, fmt.Sprintf("cell %d has outputs or an execution count: clear outputs before committing", i+1))
		}
		if first {
			first = false
			src := string(c.Source)
			if !strings.Contains(src, pinReplace) || !strings.Contains(src, pinRequire) {
				probs = append(probs, fmt.Sprintf("cell %d (the first code cell) must pin the checkout:\n%s", i+1, pinCell("..")))
			}
		}
	}
	if first {
		probs = append(probs, "no code cell")
	}
	return probs
}

// pinRe matches a module requirement pinned in a notebook's `!*go mod edit` line.
var pinRe = regexp.MustCompile(`-require=([^\s@]+)@(\S+)`)

// notebookPins returns the module versions a notebook pins with `go mod edit -require=`, except
// peftlab itself (pinned to the checkout through -replace).
func notebookPins(nb *notebook) map[string]string {
	pins := map[string]string{}
	for _, c := range nb.Cells {
		if c.CellType != "code" {
			continue
		}
		for _, line := range strings.Split(string(c.Source), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "!") || !strings.Contains(line, "go mod edit") {
				continue
			}
			for _, m := range pinRe.FindAllStringSubmatch(line, -1) {
				if m[1] != "github.com/peftlab/peftlab" {
					pins[m[1]] = m[2]
				}
			}
		}
	}
	return pins
}

// pinProblems lists the pins of a notebook that disagree with the checkout's go.mod (module path
// to version, from its require lines): a notebook must build with exactly the versions the
// library is built and tested with, and a module go.mod does not require at all is pinned to
// nothing anyone tested.
func pinProblems(nb *notebook, goMod map[string]string) []string {
	pins := notebookPins(nb)
	mods := make([]string, 0, len(pins))
	for m := range pins {
		mods = append(mods, m)
	}
	sort.Strings(mods)
	var probs []string
	for _, m := range mods {
		switch want, ok := goMod[m]; {
		case !ok:
			probs = append(probs, fmt.Sprintf("pins %s@%s, which go.mod does not require", m, pins[m]))
		case want != pins[m]:
			probs = append(probs, fmt.Sprintf("pins %s@%s, go.mod requires %s", m, pins[m], want))
		}
	}
	return probs
}
