package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/peftlab/peftlab/pkg/fetch"
)

// Debian packages for Jupyter: the fallback where JupyterLab cannot come from PyPI (see
// jupyterlab.go). Debian has no JupyterLab; its classic Notebook serves the same .ipynb files.
// --no-install-recommends keeps the set small; these were checked to be enough on Debian bookworm.
var (
	// aptHeadless is what `exec` needs: nbconvert with nbclient drives the kernel.
	aptHeadless = []string{"jupyter-nbconvert", "python3-nbclient", "jupyter-client"}
	// aptUI adds the browser UI for `lab`.
	aptUI = []string{"jupyter-notebook", "python3-ipykernel", "jupyter-nbformat"}
	// aptFetch is what the installers of the ECharts script and of the data sets use (npm pack).
	aptFetch = []string{"npm"}
	// aptTest is what `make test` needs beyond the lab: the chart tests and the JupyterLab
	// browser test run headless Chromium.
	aptTest = []string{"chromium"}
)

// jupyterEnv is the environment for jupyter commands: Debian's Python prints a debugger warning
// on every start unless PYDEVD_DISABLE_FILE_VALIDATION is set.
func jupyterEnv(extra ...string) []string {
	env := append(os.Environ(), "PYDEVD_DISABLE_FILE_VALIDATION=1")
	return append(env, extra...)
}

// jupyterSub returns the executable of the Jupyter sub-command sub ("lab", "nbconvert",
// "notebook"): the lab venv's when the venv is installed and has it, else jupyter-<sub> on PATH
// (Debian's, or a Jupyter installed some other way: pip, conda, an image's venv). Running
// jupyter-<sub> is what `jupyter <sub>` does.
func jupyterSub(sub string) (string, error) {
	if labVenvReady() {
		p := filepath.Join(labVenv(), "bin", "jupyter-"+sub)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("jupyter-" + sub)
	if err != nil {
		return "", fmt.Errorf("jupyter %s is not installed: run `go run ./kernel install`", sub)
	}
	return p, nil
}

// haveJupyter reports whether the given Jupyter sub-commands are installed (see jupyterSub).
func haveJupyter(subs ...string) bool {
	for _, s := range subs {
		if _, err := jupyterSub(s); err != nil {
			return false
		}
	}
	return true
}

// haveUI reports whether a browser UI is installed: JupyterLab or the classic Notebook.
func haveUI() bool { return haveJupyter("lab") || haveJupyter("notebook") }

// installJupyter makes sure a headless runner, a browser UI and npm are installed, installing
// the Debian packages that are missing (with sudo when not root): Debian's classic Notebook when
// JupyterLab is not installed (see installJupyterLab). Extra Debian packages (e.g. aptTest) can
// be asked for; each is skipped when a command of the same name is already on PATH or dpkg has it.
func installJupyter(log *logger, extra []string) (changed bool, err error) {
	var pkgs []string
	if !haveJupyter("nbconvert") {
		pkgs = append(pkgs, aptHeadless...)
	}
	if !haveUI() {
		pkgs = append(pkgs, aptUI...)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		pkgs = append(pkgs, aptFetch...)
	}
	for _, p := range extra {
		if _, err := exec.LookPath(p); err != nil && !fetch.DebInstalled(p) {
			pkgs = append(pkgs, p)
		}
	}
	if len(pkgs) == 0 {
		ui := "JupyterLab"
		if !haveJupyter("lab") {
			ui = "the classic Notebook (no JupyterLab)"
		}
		log.printf("jupyter: nbconvert, %s and npm are installed", ui)
		return false, nil
	}
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return false, fmt.Errorf("missing: Jupyter (nbconvert and notebook or jupyterlab) or npm, and this is not a Debian-based system, so they cannot be installed automatically: install them (e.g. `pip install jupyterlab nbconvert` and Node.js's npm), then re-run")
	}
	if slices.Contains(pkgs, aptUI[0]) {
		log.printf("jupyter: installing Debian's classic Notebook (Debian has no JupyterLab)")
	}
	log.printf("jupyter: installing Debian packages %v", pkgs)
	if err := fetch.Apt(pkgs...); err != nil {
		return false, err
	}
	if !haveJupyter("nbconvert") || !haveUI() {
		return false, fmt.Errorf("the Jupyter Debian packages are installed but `jupyter nbconvert` or `jupyter notebook` is still not on PATH (PATH=%s)", os.Getenv("PATH"))
	}
	return true, nil
}

// jupyterDataDir is where Jupyter looks for user kernelspecs: $JUPYTER_DATA_DIR, else the
// platform default (the same rule as jupyter_core's jupyter_data_dir).
func jupyterDataDir() (string, error) {
	if d := os.Getenv("JUPYTER_DATA_DIR"); d != "" {
		return filepath.Abs(d)
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find the Jupyter data directory: %w (set JUPYTER_DATA_DIR)", err)
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Jupyter"), nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, "jupyter"), nil
	}
	return filepath.Join(home, ".local", "share", "jupyter"), nil
}
