// Package backend picks the GoMLX backend peftlab computes on and makes
// training on it fast enough.
//
// New returns the backend named by $GOMLX_BACKEND, by default the pure-Go
// backend ("go", GoMLX's simplego) in a configuration that cannot deadlock on
// small machines, and installs peftlab's matrix-product and Slice gradients
// (see InstallGradients). Everything in peftlab — tests, notebooks, the
// trainer — gets its backend here:
//
//	b, err := backend.New()
//	if err != nil { return err }
//	fmt.Println(backend.Describe()) // e.g. "go:ops_sequential (pure Go, simplego) · GoMLX v0.26.0 · fast gradients"
//
// # GPUs and XLA
//
// The XLA backend needs cgo and a PJRT plugin (a shared library loaded at run
// time), so it is only compiled in with the build tag "xla":
//
//	go build -tags xla ./...        # or: go test -tags xla ...
//	GOMLX_BACKEND=xla:/abs/path/to/xla_cuda_plugin.so ./program
//	# or: PJRT_PLUGIN_LIBRARY_PATH=/dir/with/plugins GOMLX_BACKEND=xla:cuda ./program
//
// The CUDA plugin is the file jax_plugins/xla_cuda13/xla_cuda_plugin.so of the
// jax-cuda wheels. peftlab never downloads plugins: GoMLX's automatic
// installer is switched off, and a plugin that cannot be found or loaded is
// reported as an error naming these settings. Without the tag, binaries stay
// pure Go (CGO_ENABLED=0 works) and asking for "xla" is an error saying how to
// build with it.
package backend

import (
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
)

// DefaultConfig is the backend New uses when $GOMLX_BACKEND is unset, and the
// configuration it gives the pure-Go backend when $GOMLX_BACKEND is plain "go".
//
// simplego's default mode runs independent ops of a graph in parallel on a
// worker pool of 2×cores goroutines, and a matrix product running as one of
// those ops waits for more workers from the same pool to split its own work.
// On a 2-core machine a training step has enough concurrent matrix products
// to occupy every worker with such waits: the process hangs with idle CPUs.
// Two settings avoid the hang:
//
//   - "ops_sequential" (the default): ops run one after another on the
//     calling goroutine; only leaf work inside an op (the rows of a matrix
//     product) goes to the pool, and leaf work never waits on the pool.
//   - "parallelism=-1": no limit on the pool, so nobody waits for a worker,
//     and independent ops still run in parallel. On an idle 2-core machine it
//     was about 25% faster (a training step of a small transformer LM, d=64,
//     2 blocks, 1024 tokens: 0.17 s against 0.23 s, BenchmarkTrainStep; no
//     faster while other processes competed for the cores), but
//     simplego v0.26's parallel op scheduler reads its use counters without
//     the lock it writes them under: the race detector reports it on the
//     gradient tests of this package, so tests run with -race fail. (The race looks benign — a stale
//     count only makes an op copy an input it could have reused — but a
//     default should not depend on that reading.)
//
// So the default is the race-free one; ask for the other with
// GOMLX_BACKEND=go:parallelism=-1.
const DefaultConfig = "go:ops_sequential"

// EnvVar is the environment variable that selects the backend, as in GoMLX:
// "name" or "name:config", e.g. "go", "go:parallelism=-1", "xla:cuda",
// "xla:/abs/path/plugin.so".
const EnvVar = backends.ConfigEnvVar

// xlaCompiled is set by xla.go when the binary is built with the "xla" tag.
var xlaCompiled bool

// xlaNames are the names GoMLX's XLA package registers.
var xlaNames = []string{"xla", "stablehlo", "hlo", "shlo"}

// Config returns the backend configuration New uses: $GOMLX_BACKEND if set,
// otherwise DefaultConfig, with plain "go" expanded to DefaultConfig.
func Config() string {
	cfg := strings.TrimSpace(os.Getenv(EnvVar))
	if cfg == "" || cfg == simplego.BackendName || cfg == simplego.BackendName+":" {
		return DefaultConfig
	}
	return cfg
}

// New returns the backend selected by Config, after installing peftlab's
// gradients (InstallGradients). It never downloads anything; when the XLA
// backend is asked for but not compiled in or its plugin cannot be loaded, the
// error says what to set.
func New() (b backends.Backend, err error) {
	InstallGradients()
	cfg := Config()
	name, _, _ := strings.Cut(cfg, ":")
	if slices.Contains(xlaNames, name) && !xlaCompiled {
		return nil, fmt.Errorf("%s=%q asks for the XLA backend, but this program was built without it: "+
			"build with `-tags xla` (needs cgo) and point %s=xla:/abs/path/plugin.so or "+
			"PJRT_PLUGIN_LIBRARY_PATH at a PJRT plugin; or unset %s to use the pure-Go backend",
			EnvVar, cfg, EnvVar, EnvVar)
	}
	if !slices.Contains(backends.List(), name) {
		known := backends.List()
		slices.Sort(known)
		return nil, fmt.Errorf("%s=%q: unknown backend %q (compiled in: %s)", EnvVar, cfg, name, strings.Join(known, ", "))
	}
	defer func() {
		if r := recover(); r != nil {
			b, err = nil, fmt.Errorf("backend %q: %v", cfg, r)
		}
		if err != nil && slices.Contains(xlaNames, name) {
			err = fmt.Errorf("%w\n(peftlab never downloads PJRT plugins: set %s=xla:/abs/path/plugin.so, "+
				"or PJRT_PLUGIN_LIBRARY_PATH to the folder holding it; the CUDA plugin is "+
				"jax_plugins/xla_cuda13/xla_cuda_plugin.so from the jax-cuda wheels)", err, EnvVar)
		}
	}()
	if name == simplego.BackendName {
		// simplego prints a line to stdout when given "parallelism": keep
		// stdout clean for programs whose output is data (JSON, tables).
		b, err = quietly(func() (backends.Backend, error) { return backends.NewWithConfig(cfg) })
	} else {
		b, err = backends.NewWithConfig(cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", cfg, err)
	}
	return b, nil
}

var stdoutMu sync.Mutex

// quietly runs fn with os.Stdout pointed at the null device.
func quietly(fn func() (backends.Backend, error)) (backends.Backend, error) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return fn()
	}
	defer null.Close()
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	saved := os.Stdout
	os.Stdout = null
	defer func() { os.Stdout = saved }()
	return fn()
}

// Describe returns a one-line description of the backend New selects, its
// configuration, the GoMLX version and whether peftlab's gradients are
// installed, for run records and benchmark reports.
func Describe() string {
	cfg := Config()
	name, _, _ := strings.Cut(cfg, ":")
	kind := name
	switch {
	case name == simplego.BackendName:
		kind = "pure Go, simplego"
	case slices.Contains(xlaNames, name):
		kind = "XLA/PJRT"
	}
	grads := "stock gradients"
	if FastGradients() {
		grads = "fast gradients"
	}
	return fmt.Sprintf("%s (%s) · GoMLX %s · %s", cfg, kind, GoMLXVersion(), grads)
}

// goMLXPinned is the GoMLX version in go.mod (a test keeps them in step). Test
// binaries carry no dependency versions, so GoMLXVersion falls back to it.
const goMLXPinned = "v0.26.0"

// GoMLXVersion returns the version of GoMLX linked into this binary.
func GoMLXVersion() string {
	if v := ModuleVersion("github.com/gomlx/gomlx"); v != "unknown" {
		return v
	}
	return goMLXPinned
}

// ModuleVersion returns the version of a Go module linked into this binary
// (e.g. "v0.26.0" for "github.com/gomlx/gomlx"), "(devel)" for the main
// module, or "unknown" when the binary carries no build information.
func ModuleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if info.Main.Path == path {
		return info.Main.Version
	}
	for _, d := range info.Deps {
		if d.Path == path {
			if d.Replace != nil {
				return d.Replace.Version + " (replaced)"
			}
			return d.Version
		}
	}
	return "unknown"
}
