package main

import (
	"flag"
	"fmt"
	"maps"
	"slices"

	"github.com/peftlab/peftlab/pkg/backend"
)

// XLA on the CPU: `install -xla-cpu` registers the kernel on XLA's CPU compiler (GOMLX_BACKEND=xla:cpu,
// cells built with -tags xla and cgo), whose training steps are 3-7x faster than the pure-Go
// backend's on the same cores (bench/NOTES.md, section 11). The plugin is OpenXLA's xla-cpu-pjrt
// wheel from PyPI, hash-pinned (pkg/backend.InstallXLACPU); pkg/backend resolves "xla:cpu" to it
// at run time, and nothing is downloaded then.

// xlaCPUEnvMarker is set in the kernelspec's environment of an XLA CPU registration: a later
// plain `install` keeps it while the plugin is installed, as it keeps a GPU registration.
const xlaCPUEnvMarker = "PEFTLAB_XLA_CPU"

// xlaCPUEnv is the kernelspec environment of an XLA CPU registration.
func xlaCPUEnv() map[string]string {
	return map[string]string{
		"GOMLX_BACKEND": backend.XLACPU,
		"GOFLAGS":       "-tags=xla",
		"CGO_ENABLED":   "1",
		xlaCPUEnvMarker: "1",
	}
}

// setupXLACPU installs the CPU plugin when it is missing, checks that a program built with
// -tags xla computes on it, and returns the kernel environment that uses it.
func setupXLACPU(log *logger) (env map[string]string, changed bool, err error) {
	if err := needCgo(log); err != nil {
		return nil, false, err
	}
	_, had := backend.XLACPUPlugin()
	p, err := backend.InstallXLACPU(func(format string, args ...any) { log.printf("xla-cpu: "+format, args...) })
	if err != nil {
		return nil, false, err
	}
	if had {
		log.printf("xla-cpu: XLA's CPU plugin (%s) already installed: %s", backend.XLACPUWheel(), p)
	}
	env = xlaCPUEnv()
	out, err := probeXLA(env, "XLA's CPU plugin")
	if err != nil {
		return nil, false, err
	}
	log.printf("xla-cpu: %s", out)
	return env, !had, nil
}

// currentXLACPUEnv returns the XLA CPU environment of a registered spec whose plugin is still
// installed, or nil.
func currentXLACPUEnv(spec kernelSpec) map[string]string {
	if spec.Env[xlaCPUEnvMarker] == "" {
		return nil
	}
	if _, ok := backend.XLACPUPlugin(); !ok {
		return nil
	}
	return xlaCPUEnv()
}

// cmdXLACPU installs XLA's CPU plugin (when missing) and checks that it computes, without touching
// the kernel registration: for benchmarks and tests run by hand (make bench-xla, make test-xla).
// It prints the variables that select the plugin as `export` lines on stdout, its log on stderr.
func cmdXLACPU(args []string) error {
	fs := flag.NewFlagSet("xla-cpu", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: eval \"$(go run ./kernel xla-cpu)\"\n\n"+
			"Installs XLA's CPU PJRT plugin ("+backend.XLACPUWheel()+" from PyPI, hash-pinned) when it is missing, checks that a\n"+
			"program built with -tags xla computes on it, and prints the variables that select it as export lines. `install\n"+
			"-xla-cpu` does the same and registers the notebook kernel on it.")
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return exitError{code: 2, msg: "kernel xla-cpu: takes no arguments"}
	}
	env, _, err := setupXLACPU(newLogger("kernel"))
	if err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if k != xlaCPUEnvMarker {
			fmt.Printf("export %s=%s\n", k, shellQuote(env[k]))
		}
	}
	return nil
}
