// Package backend picks the GoMLX compute backend peftlab runs on and says
// which one it picked.
//
// New returns the backend named by $GOMLX_BACKEND, by default the pure-Go
// backend ("go", github.com/gomlx/compute/gobackend) in a configuration that
// cannot deadlock on small machines, and makes GoMLX's matrix-product
// gradients skip transposes that move nothing (InstallGradients). Everything in peftlab — tests, notebooks,
// the trainer, the benchmarks — gets its backend here:
//
//	b, err := backend.New()
//	if err != nil { return err }
//	fmt.Println(backend.Describe()) // e.g. "go:parallelism=-1 (pure Go) · matmul simd:avx512 · GoMLX v0.28.2"
//
// # SIMD
//
// The pure-Go backend's matrix products have AVX2 and AVX-512 kernels that
// Go compiles only with GOEXPERIMENT=simd (Go 1.26's simd/archsimd). Every
// build of peftlab sets it (Makefile, .ci/run, the kernel's GoNB
// environment, Docker); a build without it still works, on portable scalar
// loops that are about 20x slower for large products. MatmulPath reports
// which kernels this binary runs, so a notebook's first cell can show it.
//
// # GPUs and XLA
//
// The XLA backend needs cgo and a PJRT plugin (a shared library loaded at run
// time), so it is only compiled in with the build tag "xla":
//
//	go build -tags xla ./...        # or: go test -tags xla ...
//	GOMLX_BACKEND=xla:cpu ./program   # XLA's CPU compiler (InstallXLACPU; 3-7x faster than pure Go)
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
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/version"
)

// DefaultConfig is the backend New uses when $GOMLX_BACKEND is unset, and the
// configuration it gives the pure-Go backend when $GOMLX_BACKEND is plain "go".
//
// The Go backend runs independent ops of a graph in parallel on a worker
// pool, by default of 2×cores goroutines, and a matrix product running as one
// of those ops waits for more workers from the same pool to split its own
// work. On a 2-core machine a training step has enough concurrent products to
// occupy every worker with such waits, and the process hangs with idle CPUs:
// with compute v0.1.3, "go:ops_parallel" hung the bench-lm FT step in 6 of 6
// runs (bench/NOTES.md). "parallelism=-1" lifts the pool's limit, so nobody
// waits for a worker: 32 benchmark runs and the test suite never hung, and a
// training step is 1.4-1.7x faster than with "go:ops_sequential" (ops one
// after another on the calling goroutine, which cannot hang either, and is
// the fallback: GOMLX_BACKEND=go:ops_sequential).
const DefaultConfig = "go:parallelism=-1"

// EnvVar is the environment variable that selects the backend, as in GoMLX:
// "name" or "name:config", e.g. "go", "go:ops_sequential", "xla:cuda",
// "xla:/abs/path/plugin.so".
const EnvVar = compute.ConfigEnvVar

// xlaCompiled is set by xla.go when the binary is built with the "xla" tag.
var xlaCompiled bool

// xlaNames are the names GoMLX's XLA package registers.
var xlaNames = []string{"xla", "stablehlo", "hlo", "shlo"}

// Config returns the backend configuration New uses: $GOMLX_BACKEND if set,
// otherwise DefaultConfig, with plain "go" expanded to DefaultConfig.
func Config() string {
	cfg := strings.TrimSpace(os.Getenv(EnvVar))
	if cfg == "" || cfg == gobackend.BackendName || cfg == gobackend.BackendName+":" {
		return DefaultConfig
	}
	return cfg
}

// New returns the backend selected by Config, after installing peftlab's
// wrapper of GoMLX's matrix-product gradient (InstallGradients). It never downloads anything;
// when the XLA backend is asked for but not compiled in or its plugin cannot
// be loaded, the error says what to set.
func New() (b compute.Backend, err error) {
	InstallGradients()
	cfg := Config()
	name, _, _ := strings.Cut(cfg, ":")
	if slices.Contains(xlaNames, name) && !xlaCompiled {
		return nil, withXLAHint(fmt.Errorf("%s=%q asks for the XLA backend, but this program was built without it: "+
			"build with `-tags xla` (needs cgo) and point %s=xla:/abs/path/plugin.so or "+
			"PJRT_PLUGIN_LIBRARY_PATH at a PJRT plugin; or unset %s to use the pure-Go backend",
			EnvVar, cfg, EnvVar, EnvVar))
	}
	if !slices.Contains(compute.List(), name) {
		known := compute.List()
		slices.Sort(known)
		return nil, fmt.Errorf("%s=%q: unknown backend %q (compiled in: %s)", EnvVar, cfg, name, strings.Join(known, ", "))
	}
	cfg, err = resolveXLACPU(cfg)
	if err != nil {
		return nil, err
	}
	err = catch.Error(func() error {
		if name == gobackend.BackendName {
			// The Go backend prints a line to stdout when given "parallelism":
			// keep stdout clean for programs whose output is data (JSON, tables).
			b, err = quietly(func() (compute.Backend, error) { return compute.NewWithConfig(cfg) })
		} else {
			b, err = compute.NewWithConfig(cfg)
		}
		return err
	})
	if err != nil {
		err = fmt.Errorf("backend %q: %w", cfg, err)
		if slices.Contains(xlaNames, name) {
			err = withXLAHint(err)
		}
		return nil, err
	}
	return b, nil
}

// withXLAHint adds to an error of the XLA backend where its plugin comes from.
func withXLAHint(err error) error {
	return fmt.Errorf("%w\n(peftlab never downloads PJRT plugins at run time: `go run ./kernel install -gpu` checks the "+
		"NVIDIA driver, finds or installs the CUDA plugin (hash-pinned) and registers the notebook kernel with it, "+
		"and `go run ./kernel gpu -env` prints the variables that run a program on it; by hand, set %s=xla:/abs/path/plugin.so, "+
		"or PJRT_PLUGIN_LIBRARY_PATH to the folder holding it; the CUDA plugin is "+
		"jax_plugins/xla_cuda13/xla_cuda_plugin.so from the jax-cuda13-pjrt wheel)", err, EnvVar)
}

var stdoutMu sync.Mutex

// quietly runs fn with os.Stdout pointed at the null device.
func quietly(fn func() (compute.Backend, error)) (compute.Backend, error) {
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

// IsGo reports whether a backend configuration names the pure-Go backend.
func IsGo(cfg string) bool {
	name, _, _ := strings.Cut(cfg, ":")
	return name == gobackend.BackendName
}

// Describe returns a one-line description of the backend New selects, its
// configuration, the matrix-product kernels and the GoMLX version, for the
// first cell of a notebook, run records and benchmark reports.
func Describe() string {
	cfg := Config()
	name, _, _ := strings.Cut(cfg, ":")
	switch {
	case name == gobackend.BackendName:
		return fmt.Sprintf("%s (pure Go) · matmul %s · GoMLX %s", cfg, MatmulPath(), GoMLXVersion())
	case slices.Contains(xlaNames, name) && isCUDA(cfg):
		gpus := GPUs()
		if gpus == "" {
			gpus = "no NVIDIA GPU found"
		}
		return fmt.Sprintf("%s (XLA/PJRT) — %s · GoMLX %s", cfg, gpus, GoMLXVersion())
	case IsXLACPU(cfg):
		return fmt.Sprintf("%s (XLA/PJRT, CPU: %s) · GoMLX %s", cfg, XLACPUWheel(), GoMLXVersion())
	case slices.Contains(xlaNames, name):
		return fmt.Sprintf("%s (XLA/PJRT) · GoMLX %s", cfg, GoMLXVersion())
	}
	return fmt.Sprintf("%s · GoMLX %s", cfg, GoMLXVersion())
}

// MatmulPath names the float32 matrix-product kernels the pure-Go backend runs
// in this process: "simd:avx512" or "simd:avx2" when the binary was built with
// GOEXPERIMENT=simd on a CPU that has them, otherwise "portable" (scalar Go
// loops), with the reason in parentheses; "none" under GOMLX_DOT_MATMUL=false,
// which in compute v0.1.3 leaves the float32 layouts without any kernel (a
// product then fails to compile). It follows the same rules and
// environment switches as the backend's own kernel registration
// (GOMLX_DOT_MATMUL, GOMLX_SIMD_AVX512, GOMLX_SIMD_AVX2).
func MatmulPath() string {
	if !simdBuilt {
		return "portable (built without GOEXPERIMENT=simd)"
	}
	if !envBool("GOMLX_DOT_MATMUL") {
		return "none (GOMLX_DOT_MATMUL=false switches off every float32 product kernel: products fail)"
	}
	avx512, avx2 := cpuAVX512(), cpuAVX2()
	switch {
	case avx512 && envBool("GOMLX_SIMD_AVX512"):
		return "simd:avx512"
	case avx2 && envBool("GOMLX_SIMD_AVX2"):
		return "simd:avx2"
	case avx512 || avx2:
		return "portable (SIMD switched off by GOMLX_SIMD_AVX512/GOMLX_SIMD_AVX2)"
	}
	return "portable (this CPU has neither AVX2 nor AVX-512)"
}

// SIMDBuilt reports whether this binary was built with GOEXPERIMENT=simd on
// amd64, i.e. whether the SIMD kernels exist in it at all.
func SIMDBuilt() bool { return simdBuilt }

// envBool reads a boolean switch that defaults to true, as the backend does.
// An unparsable value counts as true here; the backend itself refuses it.
func envBool(name string) bool {
	v, ok := os.LookupEnv(name)
	if !ok || v == "" {
		return true
	}
	b, err := strconv.ParseBool(v)
	return err != nil || b
}

// GoMLXVersion returns the version of GoMLX linked into this binary
// (version.Current().GoMLX), as Describe shows it.
func GoMLXVersion() string { return version.Current().GoMLX }
