package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/peftlab/peftlab/pkg/labdir"
)

// The PyTorch peer is bench/torch/peer.py, run with the python of a virtual
// environment that bench/torch/install.sh fills from PyPI (a pinned,
// hash-checked torch). The bench installs it when it is missing and says so;
// `make test` never does.

// peer is a runnable PyTorch peer.
type peer struct {
	python, script string
	version        string
}

// venvDir is where install.sh puts the peer's virtual environment.
func venvDir() string { return filepath.Join(labdir.Dir(), "torch-venv") }

// findPeer returns the peer, installing it first when install is set and it
// is missing. repo is the repository root (bench/torch lives there).
func findPeer(repo string, install bool) (*peer, error) {
	script := filepath.Join(repo, "bench", "torch", "peer.py")
	if _, err := os.Stat(script); err != nil {
		return nil, fmt.Errorf("the PyTorch peer %s is missing: run the bench from a peftlab checkout", script)
	}
	python := filepath.Join(venvDir(), "bin", "python")
	if v, err := torchVersion(python); err == nil {
		return &peer{python: python, script: script, version: v}, nil
	}
	if !install {
		return nil, fmt.Errorf("PyTorch is not installed in %s (run bench/torch/install.sh %s, or pass -peer=install)", venvDir(), venvDir())
	}
	fmt.Fprintf(os.Stderr, "bench: installing the PyTorch peer into %s (bench/torch/install.sh; a few minutes, once)\n", venvDir())
	cmd := exec.Command("bash", filepath.Join(repo, "bench", "torch", "install.sh"), venvDir())
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("installing the PyTorch peer: %w", err)
	}
	v, err := torchVersion(python)
	if err != nil {
		return nil, fmt.Errorf("the PyTorch peer was installed but does not import: %w", err)
	}
	return &peer{python: python, script: script, version: v}, nil
}

func torchVersion(python string) (string, error) {
	if _, err := os.Stat(python); err != nil {
		return "", err
	}
	out, err := exec.Command(python, "-c", "import torch; print(torch.__version__)").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// command returns the peer's command for one row. OpenMP reads its settings
// when torch loads: threads as asked, and PASSIVE so idle workers sleep
// instead of spinning on cores the next row needs.
func (p *peer) command(ctx context.Context, specJSON []byte, threads int) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.python, p.script, "--spec", string(specJSON))
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("OMP_NUM_THREADS=%d", threads), "OMP_WAIT_POLICY=PASSIVE",
		fmt.Sprintf("MKL_NUM_THREADS=%d", threads))
	return cmd
}

// repoRoot finds the repository root from the working directory (the
// folder holding go.mod with peftlab's module line).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.Contains(mod, []byte("module github.com/peftlab/peftlab\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside a peftlab checkout (no go.mod of github.com/peftlab/peftlab above the working directory)")
		}
		dir = parent
	}
}
