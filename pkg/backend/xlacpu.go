package backend

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// XLACPU is the backend configuration of XLA's CPU compiler: GOMLX_BACKEND=xla:cpu, in a
// binary built with -tags xla. XLA compiles a whole step into fused loops over Eigen's
// matrix products, which makes a training step 3-7x faster than the pure-Go backend on
// the same cores (bench/NOTES.md, section 11), at the price of cgo and a 260 MB plugin.
//
// peftlab resolves "xla:cpu" to the plugin InstallXLACPU puts in its cache, unless
// $PJRT_PLUGIN_LIBRARY_PATH is set (then GoMLX searches there for pjrt_c_api_cpu_plugin.so,
// as it does without peftlab).
const XLACPU = "xla:cpu"

// xlaCPUWheel is XLA's CPU PJRT plugin as OpenXLA publishes it on PyPI (PJRT C API 0.81,
// which go-xla v0.4.1 loads), for manylinux x86_64; only the shared library is kept.
var xlaCPUWheel = fetch.Wheel{
	Name:      "xla-cpu-pjrt",
	Version:   "0.0.1",
	SHA256:    "55837b6b7b47daa717f2d9a5a03563ea0ceaa338d06a81a1e2d3f060d960decc",
	Keep:      func(p string) bool { return p == xlaCPUMember },
	Selection: xlaCPUMember,
}

const xlaCPUMember = "xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so"

// XLACPUWheel names the pinned wheel the CPU plugin comes from, e.g. "xla-cpu-pjrt 0.0.1".
func XLACPUWheel() string { return xlaCPUWheel.Name + " " + xlaCPUWheel.Version }

// xlaCPUDir is where InstallXLACPU installs the plugin: $PEFTLAB_HOME/xla-cpu.
func xlaCPUDir() string { return filepath.Join(labdir.Dir(), "xla-cpu") }

// XLACPUPlugin returns the path of the installed CPU plugin, and whether it is installed.
func XLACPUPlugin() (string, bool) {
	dir := xlaCPUDir()
	p := filepath.Join(dir, filepath.FromSlash(xlaCPUMember))
	if !xlaCPUWheel.Installed(dir) {
		return p, false
	}
	_, err := os.Stat(p)
	return p, err == nil
}

// InstallXLACPU installs XLA's CPU plugin from PyPI (hash-pinned, a 63 MB download, 260 MB on
// disk) unless it is installed already, and returns its path. logf, when not nil, is told
// before a download starts. Only installers call it: nothing downloads at run time.
func InstallXLACPU(logf func(format string, args ...any)) (string, error) {
	if p, ok := XLACPUPlugin(); ok {
		return p, nil
	}
	if logf != nil {
		logf("installing XLA's CPU PJRT plugin (%s, from PyPI, hash-pinned, 63 MB) into %s", XLACPUWheel(), xlaCPUDir())
	}
	if err := xlaCPUWheel.Fetch(xlaCPUDir()); err != nil {
		return "", fmt.Errorf("install XLA's CPU plugin: %w", err)
	}
	p, ok := XLACPUPlugin()
	if !ok {
		return "", fmt.Errorf("install XLA's CPU plugin: %s is missing after the install", p)
	}
	return p, nil
}

// IsXLACPU reports whether a backend configuration asks for XLA's CPU plugin by name.
func IsXLACPU(cfg string) bool {
	name, rest, _ := strings.Cut(cfg, ":")
	plugin, _, _ := strings.Cut(rest, ",")
	return slices.Contains(xlaNames, name) && plugin == "cpu"
}

// resolveXLACPU turns "xla:cpu[,options]" into the absolute path of peftlab's installed plugin
// when $PJRT_PLUGIN_LIBRARY_PATH is unset; other configurations pass through. The error says
// how to install the plugin.
func resolveXLACPU(cfg string) (string, error) {
	if !IsXLACPU(cfg) || os.Getenv("PJRT_PLUGIN_LIBRARY_PATH") != "" {
		return cfg, nil
	}
	p, ok := XLACPUPlugin()
	if !ok {
		return "", fmt.Errorf("%s=%s: XLA's CPU plugin is not installed: `make xla-cpu` or `go run ./kernel install -xla-cpu` "+
			"installs it (%s from PyPI, hash-pinned), or set PJRT_PLUGIN_LIBRARY_PATH to a folder holding pjrt_c_api_cpu_plugin.so",
			EnvVar, cfg, XLACPUWheel())
	}
	name, rest, _ := strings.Cut(cfg, ":")
	_, opts, hasOpts := strings.Cut(rest, ",")
	out := name + ":" + p
	if hasOpts {
		out += "," + opts
	}
	return out, nil
}
