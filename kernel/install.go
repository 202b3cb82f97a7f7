package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peftlab/peftlab/pkg/dataset"
	"github.com/peftlab/peftlab/pkg/nbui"
)

// cmdInstall brings a machine from a Go toolchain to a working lab. Each step checks first and
// only acts when something is missing, so a second run changes nothing and says so.
func cmdInstall(args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	force := fs.Bool("force", false, "reinstall JupyterLab, rebuild the tools and re-register the kernel even when they are in place")
	test := fs.Bool("test", false, "also install what the tests need (Debian chromium for the chart test)")
	noData := fs.Bool("no-data", false, "skip the data sets (install them later with `go run ./kernel data`)")
	classic := fs.Bool("classic", false, "do not install JupyterLab from PyPI: use Debian's classic Notebook")
	gpu := fs.Bool("gpu", false, "run the kernel on the NVIDIA GPU: check the driver, find or install the CUDA PJRT plugin, check it computes, register the kernel with it")
	cuda := fs.Int("cuda", 0, "with -gpu: install for this CUDA version (13 or 12) without checking for a driver (image builds, where the driver comes at run time)")
	xlaCPU := fs.Bool("xla-cpu", false, "run the kernel on XLA's CPU compiler (3-7x faster steps than pure Go): install XLA's CPU PJRT plugin from PyPI (hash-pinned, 63 MB), check it computes, register the kernel with it")
	cpu := fs.Bool("cpu", false, "register the kernel on the pure-Go backend again after -gpu or -xla-cpu")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./kernel install [-force] [-test] [-no-data] [-classic] [-gpu [-cuda 13] | -xla-cpu | -cpu]\n\n"+
			"Installs "+labSummary()+" from PyPI (hash-pinned) into "+labVenv()+"\n"+
			"(Debian's classic Notebook where PyPI cannot be reached), builds GoNB "+goTools[0].Version+" and goimports into\n"+
			binDir()+", registers the Jupyter kernel \""+kernelName+"\" with\n"+
			"GOMLX_BACKEND=$GOMLX_BACKEND (default \""+defaultBackend+"\") and GOEXPERIMENT=$GOEXPERIMENT plus simd (the\n"+
			"backend's AVX matrix-product kernels; GOEXPERIMENT=nosimd opts out), installs the ECharts script and the data sets.\n"+
			"-gpu registers the kernel on the NVIDIA GPU instead: the XLA backend with a CUDA PJRT plugin found here or\n"+
			"installed from PyPI (hash-pinned, about 3 GB), cells built with -tags xla; later installs keep it until -cpu.\n"+
			"-xla-cpu registers it on XLA's CPU compiler (GOMLX_BACKEND=xla:cpu, the xla-cpu-pjrt plugin from PyPI), likewise.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if fs.NArg() > 0 {
		return exitError{code: 2, msg: "kernel install: takes no arguments"}
	}
	if *cuda != 0 {
		if *cuda != 12 && *cuda != 13 {
			return exitError{code: 2, msg: fmt.Sprintf("kernel install: -cuda %d: want 13 or 12", *cuda)}
		}
		*gpu = true
	}
	if n := btoi(*gpu) + btoi(*xlaCPU) + btoi(*cpu); n > 1 {
		return exitError{code: 2, msg: "kernel install: -gpu, -xla-cpu and -cpu exclude each other"}
	}
	return install(newLogger("install"), installOptions{Force: *force, Test: *test, Data: !*noData, Classic: *classic,
		GPU: *gpu, CUDA: *cuda, XLACPU: *xlaCPU, CPU: *cpu})
}

// installOptions selects the optional parts of install.
type installOptions struct {
	Force bool // rebuild tools and re-register the kernel
	Test  bool // also install the Debian packages tests need
	Data  bool // install the data sets
	// Classic skips JupyterLab from PyPI: Debian's classic Notebook is the browser UI.
	Classic bool
	// GPU registers the kernel on the CUDA plugin (see gpu.go); CUDA (12 or 13) skips the
	// driver check; XLACPU registers it on XLA's CPU plugin (xlacpu.go); CPU drops either
	// registration.
	GPU, XLACPU, CPU bool
	CUDA             int
}

func install(log *logger, opt installOptions) error {
	var extra []string
	if opt.Test {
		extra = aptTest
	}
	changed := false
	steps := []func() (bool, error){
		func() (bool, error) {
			if opt.Classic {
				log.printf("jupyter: -classic: not installing JupyterLab from PyPI")
				return false, nil
			}
			changed, _, err := installJupyterLab(log, opt.Force)
			return changed, err
		},
		func() (bool, error) { return installJupyter(log, extra) },
		func() (bool, error) { return installTools(log, opt.Force) },
		func() (bool, error) {
			choice := gpuChoice{CPU: opt.CPU}
			gpuChanged := false
			var err error
			switch {
			case opt.GPU:
				choice.Env, gpuChanged, err = setupGPU(log, opt.CUDA)
			case opt.XLACPU:
				choice.Env, gpuChanged, err = setupXLACPU(log)
			}
			if err != nil {
				return false, err
			}
			changed, err := registerKernel(log, opt.Force, choice)
			return changed || gpuChanged, err
		},
		func() (bool, error) { return installCharts(log) },
	}
	if opt.Data {
		steps = append(steps, func() (bool, error) { return installData(log) })
	}
	for _, step := range steps {
		c, err := step()
		if err != nil {
			return err
		}
		changed = changed || c
	}
	if !changed {
		log.printf("everything already installed: nothing to do")
	} else {
		log.printf("done")
	}
	return nil
}

// installCharts installs the ECharts script that notebook charts inline (see pkg/nbui).
func installCharts(log *logger) (bool, error) {
	marker := filepath.Join(nbui.EChartsDir(), "dist", "echarts.common.min.js")
	_, before := os.Stat(marker)
	if err := nbui.InstallECharts(); err != nil {
		return false, err
	}
	if before == nil {
		log.printf("charts: ECharts %s already installed in %s", nbui.EChartsVersion, nbui.EChartsDir())
		return false, nil
	}
	log.printf("charts: installed ECharts %s in %s", nbui.EChartsVersion, nbui.EChartsDir())
	return true, nil
}

// installData installs every data set that is not installed yet (see pkg/dataset).
func installData(log *logger) (bool, error) {
	var missing []string
	for _, n := range dataset.Names() {
		if !dataset.Installed(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		log.printf("data: all %d data sets already installed (%s)", len(dataset.Names()), strings.Join(dataset.Names(), ", "))
		return false, nil
	}
	log.printf("data: installing %s", strings.Join(missing, ", "))
	if err := dataset.InstallLog(prefixWriter{log: log, prefix: "data: "}, missing...); err != nil {
		return false, err
	}
	return true, nil
}

// prefixWriter turns lines written to it into log lines.
type prefixWriter struct {
	log    *logger
	prefix string
}

func (p prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		p.log.printf("%s%s", p.prefix, line)
	}
	return len(b), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
