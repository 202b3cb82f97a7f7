package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/nbui/nbuitest"
)

// The embedded requirements pin every package to one version with at least one sha256 hash
// (pip refuses anything else under --require-hashes), JupyterLab 4 and nbconvert 7 among them.
func TestLabRequirements(t *testing.T) {
	pins := labPins()
	if len(pins) < 50 {
		t.Fatalf("%d pinned packages: the requirements must be the whole closure of JupyterLab", len(pins))
	}
	for name, major := range map[string]string{"jupyterlab": "4.", "nbconvert": "7.", "nbclient": "0.", "jupyter-server": "2.", "jupyter-client": "8."} {
		if !strings.HasPrefix(pins[name], major) {
			t.Errorf("%s is pinned to %q, want %sx", name, pins[name], major)
		}
	}
	// Each requirement: "name==version \", then hash lines.
	entries := regexp.MustCompile(`(?m)^[A-Za-z0-9]`).FindAllStringIndex(labRequirements, -1)
	if len(entries) != len(pins) {
		t.Errorf("%d requirement lines, %d pins: a requirement is not of the form name==version", len(entries), len(pins))
	}
	for i, e := range entries {
		end := len(labRequirements)
		if i+1 < len(entries) {
			end = entries[i+1][0]
		}
		block := labRequirements[e[0]:end]
		name, _, _ := strings.Cut(block, "==")
		if n := regexp.MustCompile(`--hash=sha256:[0-9a-f]{64}`).FindAllString(block, -1); len(n) == 0 {
			t.Errorf("%s has no sha256 hash", name)
		}
	}
	if !strings.Contains(labSummary(), "JupyterLab "+pins["jupyterlab"]) {
		t.Errorf("labSummary() = %q", labSummary())
	}
}

// With the venv installed (what `go run ./kernel install` does where PyPI is reachable), a
// second install changes nothing, and exec and lab run the venv's nbconvert 7 and JupyterLab.
func TestLabVenvInstalled(t *testing.T) {
	if !labVenvReady() {
		nbuitest.SkipOrFail(t, "the JupyterLab venv is not installed in "+labVenv()+": run `go run ./kernel install`")
	}
	if err := labVenvWorks(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	changed, fellBack, err := installJupyterLab(&logger{w: &out}, false)
	if err != nil || changed || fellBack {
		t.Errorf("a second installJupyterLab: changed=%v fellBack=%v err=%v, want a no-op\n%s", changed, fellBack, err, out.String())
	}
	if !strings.Contains(out.String(), "already installed") {
		t.Errorf("install said %q, want it to say already installed", out.String())
	}
	for _, sub := range []string{"lab", "nbconvert"} {
		p, err := jupyterSub(sub)
		if err != nil || !strings.HasPrefix(p, labVenv()+string(os.PathSeparator)) {
			t.Errorf("jupyterSub(%q) = %s, %v; want the venv's", sub, p, err)
		}
	}
	nbc, err := newNBConvert()
	if err != nil {
		t.Fatal(err)
	}
	if nbc.Version != labPins()["nbconvert"] || nbc.Major != 7 {
		t.Errorf("nbconvert %s (major %d), want the pinned %s", nbc.Version, nbc.Major, labPins()["nbconvert"])
	}
	b, err := os.ReadFile(labOverridesPath())
	if err != nil || string(b) != labOverrides {
		t.Errorf("JupyterLab's settings overrides: %q, %v", b, err)
	}
}

// Where PyPI cannot be reached (here: pip pointed at a closed port), install makes no venv,
// says so, and leaves the browser UI to Debian's classic Notebook.
func TestLabFallsBackWithoutPyPI(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: makes a venv")
	}
	t.Setenv("PEFTLAB_HOME", t.TempDir())
	t.Setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
	t.Setenv("PIP_EXTRA_INDEX_URL", "")
	t.Setenv("PIP_FIND_LINKS", "")
	var out strings.Builder
	log := &logger{w: &out}
	if _, _, err := venvPython(log); err != nil {
		t.Skipf("no Python to make a venv with: %v", err)
	}
	changed, fellBack, err := installJupyterLab(log, false)
	if err != nil || changed || !fellBack {
		t.Fatalf("installJupyterLab without PyPI: changed=%v fellBack=%v err=%v, want a fall-back\n%s", changed, fellBack, err, out.String())
	}
	for _, want := range []string{"PyPI cannot be reached", "falling back to Debian's classic Notebook"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("install did not say %q:\n%s", want, out.String())
		}
	}
	if _, err := os.Stat(labVenv()); err == nil {
		t.Errorf("a venv was left in %s", labVenv())
	}
	if labVenvReady() {
		t.Error("labVenvReady after a fall-back")
	}
	if p, err := jupyterSub("nbconvert"); err == nil && strings.HasPrefix(p, filepath.Dir(labVenv())) {
		t.Errorf("jupyterSub(nbconvert) = %s, inside the lab directory after a fall-back", p)
	}
}
