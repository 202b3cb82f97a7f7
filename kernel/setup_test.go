package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// The tests register the kernel in a throw-away Jupyter data directory (and use throw-away
// Jupyter config and runtime directories), so they never touch the user's Jupyter setup. The
// GoNB tools are built into the shared lab bin directory, like `kernel install` does: building
// them takes minutes the first time, seconds after.
func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "peftlab-kernel-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for env, sub := range map[string]string{"JUPYTER_DATA_DIR": "data", "JUPYTER_CONFIG_DIR": "config", "JUPYTER_RUNTIME_DIR": "runtime"} {
		os.Setenv(env, filepath.Join(tmp, sub))
	}
	os.Unsetenv("JUPYTER_PATH")
	os.Unsetenv("GOMLX_BACKEND") // the tests check the default registration
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

var kernelSetup struct {
	once sync.Once
	skip string
	err  error
}

// needKernel builds the tools (if needed) and registers the kernel in the test's Jupyter data
// directory. Without Jupyter the test is skipped, except under CI (CI=true), where a missing
// install step must fail the build instead of silently skipping the notebook tests.
func needKernel(t *testing.T) {
	t.Helper()
	kernelSetup.once.Do(func() {
		if !haveJupyter("nbconvert") || !haveUI() {
			kernelSetup.skip = "Jupyter (nbconvert and a browser UI) is not installed: run `go run ./kernel install`"
			return
		}
		log := &logger{w: io.Discard}
		if _, err := installTools(log, false); err != nil {
			kernelSetup.err = err
			return
		}
		_, kernelSetup.err = registerKernel(log, false, gpuChoice{})
	})
	if kernelSetup.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true and %s", kernelSetup.skip)
		}
		t.Skip(kernelSetup.skip)
	}
	if kernelSetup.err != nil {
		t.Fatalf("setting up the kernel: %v", kernelSetup.err)
	}
}
