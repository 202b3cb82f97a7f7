// Command kernel installs and runs peftlab's Go notebook kernel: GoNB registered as the Jupyter
// kernel "peftlab", a browser lab on localhost, and a headless notebook runner that fails when
// any cell failed.
//
//	go run ./kernel install        install JupyterLab and nbconvert (PyPI, hash-pinned, in a venv;
//	                               Debian's classic Notebook without PyPI), build GoNB and goimports,
//	                               register the kernel, install the ECharts script and the data sets
//	go run ./kernel lab            start JupyterLab on 127.0.0.1 with a token, serving notebooks/
//	go run ./kernel install -gpu   the same, with the kernel on the NVIDIA GPU (XLA backend, CUDA plugin)
//	go run ./kernel exec NB...     execute notebooks headless; non-zero exit if any cell failed
//	go run ./kernel gpu [-env]     show the driver and the CUDA plugins found; -env: variables for programs
//	go run ./kernel data           install the data sets
//	go run ./kernel new NAME       create notebooks/NAME.ipynb with the standard first cell
//
// Every command is idempotent and safe to re-run; `install` does nothing when all is in place.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// A command is one sub-command of the kernel program.
type command struct {
	summary string
	run     func(args []string) error
}

var commands = map[string]command{
	"install": {"install JupyterLab (hash-pinned venv), build the pinned GoNB and tools, register the peftlab kernel, fetch charts and data", cmdInstall},
	"lab":     {"start JupyterLab on 127.0.0.1 (token auth) serving notebooks/", cmdLab},
	"exec":    {"execute notebooks headless; exit non-zero if any cell failed", cmdExec},
	"gpu":     {"show the NVIDIA driver and the CUDA PJRT plugins install -gpu would use (-env: shell variables)", cmdGPU},
	"xla-cpu": {"install XLA's CPU PJRT plugin (hash-pinned) without registering the kernel on it, check it computes (-env: shell variables)", cmdXLACPU},
	"data":    {"install the data sets", cmdData},
	"new":     {"create notebooks/NAME.ipynb with the standard first cell", cmdNew},
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			if exit.msg != "" {
				fmt.Fprintln(os.Stderr, exit.msg)
			}
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "kernel:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(os.Stdout)
		if len(args) == 0 {
			return exitError{code: 2}
		}
		return nil
	}
	c, ok := commands[args[0]]
	if !ok {
		usage(os.Stderr)
		return exitError{code: 2, msg: fmt.Sprintf("kernel: unknown command %q", args[0])}
	}
	return c.run(args[1:])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: go run ./kernel <command> [flags] [args]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun `go run ./kernel <command> -h` for the flags of a command")
}

// exitError ends the program with a given status, printing msg (if any) without the "kernel:"
// prefix: used when the command already explained itself (e.g. exec's per-notebook lines).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string {
	if e.msg != "" {
		return e.msg
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// logger prints progress lines to stderr (stdout is kept for results such as exec's summary).
type logger struct {
	w      io.Writer
	prefix string
}

func newLogger(prefix string) *logger { return &logger{w: os.Stderr, prefix: prefix} }

func (l *logger) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if l.prefix != "" {
		msg = l.prefix + ": " + msg
	}
	fmt.Fprintln(l.w, strings.TrimRight(msg, "\n"))
}
