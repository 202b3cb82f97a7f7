package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/peftlab/peftlab/pkg/mode"
)

// execOptions are the settings of one `exec` run.
type execOptions struct {
	OutDir      string        // where executed notebooks, HTML exports and logs go
	CellTimeout time.Duration // per cell, enforced by nbclient; at least 1s
	// NotebookTimeout limits one whole notebook (start-up and shutdown included); 0 means
	// CellTimeout for every cell plus one, plus 2 minutes.
	NotebookTimeout time.Duration
	Full            bool // run the full version (mode.EnvFast unset)
	HTML            bool // export HTML
	Warm            bool // build the module first so cells compile from a warm cache
}

func cmdExec(args []string) error {
	fs := flag.NewFlagSet("exec", flag.ContinueOnError)
	opt := execOptions{}
	fs.StringVar(&opt.OutDir, "out", filepath.Join("out", "notebooks"), "directory for the executed notebooks, their HTML export and logs")
	fs.DurationVar(&opt.CellTimeout, "timeout", 10*time.Minute, "time limit for each cell (at least 1s)")
	fs.DurationVar(&opt.NotebookTimeout, "notebook-timeout", 0, "time limit for a whole notebook (default: the cell limit for every cell plus one, plus 2m)")
	fs.BoolVar(&opt.Full, "full", false, "run notebooks in full (by default "+mode.EnvFast+"=1 asks them for a quick version)")
	noHTML := fs.Bool("no-html", false, "skip the HTML export")
	noWarm := fs.Bool("no-warm", false, "skip building the module first (go build ./...)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./kernel exec [flags] NOTEBOOK.ipynb...\n\n"+
			"Executes each notebook headless through the \""+kernelName+"\" kernel, writes the executed notebook and\n"+
			"an HTML export under -out, checks every cell's outputs (errors, panics, exit status, failing %%test)\n"+
			"and exits non-zero when any cell of any notebook failed.\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	opt.HTML, opt.Warm = !*noHTML, !*noWarm
	if fs.NArg() == 0 {
		fs.Usage()
		return exitError{code: 2, msg: "kernel exec: no notebooks given"}
	}
	if err := opt.check(); err != nil {
		return exitError{code: 2, msg: "kernel exec: " + err.Error()}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	results, err := execNotebooks(ctx, newLogger("exec"), fs.Args(), opt)
	if err != nil {
		return err
	}
	failed := 0
	for _, r := range results {
		if !r.ok() {
			failed++
		}
	}
	if failed > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("exec: %d of %d notebooks FAILED (executed notebooks and logs in %s)", failed, len(results), opt.OutDir)}
	}
	return nil
}

// check refuses limits nbclient would misread: it counts whole seconds and takes 0 or less as
// "no limit", so a -timeout of 500ms, 0 or -1s would let a looping cell run until the whole
// notebook's limit.
func (opt execOptions) check() error {
	if opt.CellTimeout < time.Second {
		return fmt.Errorf("-timeout %s: the time limit of a cell must be at least 1s", opt.CellTimeout)
	}
	if opt.NotebookTimeout != 0 && opt.NotebookTimeout < time.Second {
		return fmt.Errorf("-notebook-timeout %s: the time limit of a notebook must be at least 1s (or 0 for the default)", opt.NotebookTimeout)
	}
	return nil
}

// execResult is the outcome of executing one notebook.
type execResult struct {
	Name     string
	Cells    int // code cells
	Duration time.Duration
	Failures []cellFailure
	Err      string // a failure not tied to a cell (nbconvert failed, timeout, export failed)
	Executed string // path of the executed notebook, if written
	marker   string // the run's runMarkerEnv value
}

func (r execResult) ok() bool { return r.Err == "" && len(r.Failures) == 0 }

// line is the one-line summary printed per notebook.
func (r execResult) line() string {
	status := "ok"
	if !r.ok() {
		first := r.Err
		if first == "" {
			first = r.Failures[0].String()
		} else if len(r.Failures) > 0 {
			first += "; " + r.Failures[0].String()
		}
		status = "FAILED " + first
		if n := len(r.Failures); n > 1 {
			status += fmt.Sprintf(" (+%d more failed cells)", n-1)
		}
	}
	return fmt.Sprintf("%-28s %3d cells %7.1fs  %s", r.Name, r.Cells, r.Duration.Seconds(), status)
}

// execNotebooks runs each notebook and prints its summary line to stdout as it finishes. The
// error is for problems that stop everything (Jupyter or the kernel not installed, an
// interrupt: when ctx is done, the running notebook is stopped and no other one starts).
func execNotebooks(ctx context.Context, log *logger, paths []string, opt execOptions) ([]execResult, error) {
	if err := opt.check(); err != nil {
		return nil, err
	}
	nbc, err := newNBConvert()
	if err != nil {
		return nil, err
	}
	log.printf("nbconvert %s (%s)", nbc.Version, nbc.Bin)
	spec, err := registeredKernel()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.OutDir, 0o755); err != nil {
		return nil, err
	}
	// A variant of the registered kernel for this run: plain-text compile errors (which the
	// checker reads), the caller's GOMLX_BACKEND when it is set, and GOEXPERIMENT with simd.
	overlay, err := os.MkdirTemp("", "peftlab-exec-kernel-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(overlay)
	env := runEnv(spec)
	jupyterPath, err := overlayKernel(spec, overlay, []string{"--raw_error"}, env)
	if err != nil {
		return nil, err
	}
	if opt.Warm {
		// Not fatal: a package that does not build fails the notebooks importing it, with the
		// compiler's message in the cell, and leaves the other notebooks to run.
		if err := warmBuildCache(log, paths, env[goExperimentEnv]); err != nil {
			log.printf("warning: %v", err)
		}
	}
	var results []execResult
	for _, p := range paths {
		if ctx.Err() != nil {
			break
		}
		r := execNotebook(ctx, nbc, p, jupyterPath, opt)
		fmt.Println(r.line())
		for _, f := range r.Failures[min(1, len(r.Failures)):] {
			log.printf("    %s: %s", r.Name, f)
		}
		results = append(results, r)
	}
	if ctx.Err() != nil {
		return results, fmt.Errorf("interrupted after %d of %d notebooks: the running notebook's processes were stopped", len(results), len(paths))
	}
	return results, nil
}

// warmBuildCache builds the module holding the notebooks (go build ./...), so that the first
// cell importing peftlab compiles in seconds instead of a minute. It builds with the kernel's
// GOEXPERIMENT: Go's build cache is keyed by it, so a build with other experiments would not
// warm anything the cells use.
func warmBuildCache(log *logger, notebooks []string, goexperiment string) error {
	root := moduleRoot(filepath.Dir(notebooks[0]))
	if root == "" {
		return nil
	}
	goBin, err := goCommand()
	if err != nil {
		return err
	}
	start := time.Now()
	cmd := exec.Command(goBin, "build", "./...")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), goExperimentEnv+"="+goexperiment)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./... in %s (warming the build cache) failed: %w\n%s", root, err, tail(out.String(), 3000))
	}
	log.printf("build cache warm (GOEXPERIMENT=%s go build ./... took %.1fs)", goexperiment, time.Since(start).Seconds())
	return nil
}

// moduleRoot returns the directory of the go.mod at or above dir, or "".
func moduleRoot(dir string) string {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// execNotebook executes one notebook with nbconvert and checks the result. On a time-out or
// when ctx is done it stops every process of the run (nbconvert, the kernel, gopls, cell
// programs; see killRun), and after nbconvert exits it stops whatever of the run is left.
func execNotebook(ctx context.Context, nbc nbconvert, path, jupyterPath string, opt execOptions) (r execResult) {
	name := strings.TrimSuffix(filepath.Base(path), ".ipynb")
	r.Name = filepath.Base(path)
	start := time.Now()
	defer func() { r.Duration = time.Since(start) }()

	src, err := readNotebook(path)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	for _, c := range src.Cells {
		if c.isCode() {
			r.Cells++
		}
	}
	executed := filepath.Join(opt.OutDir, name+".ipynb")
	html := filepath.Join(opt.OutDir, name+".html")
	logPath := filepath.Join(opt.OutDir, name+".log")
	// Stale results of an earlier run must not pass for this one.
	for _, f := range []string{executed, html, logPath} {
		_ = os.Remove(f)
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	defer logFile.Close()

	r.marker = newRunMarker()
	// No browser shows these notebooks: interactive views (lab.Explore) render a static view
	// instead of controls that would wait for a page (see mode.EnvHeadless).
	env := jupyterEnv("JUPYTER_PATH="+jupyterPath, runMarkerEnv+"="+r.marker, mode.EnvHeadless+"=1")
	if opt.Full {
		env = append(env, mode.EnvFast+"=")
	} else {
		env = append(env, mode.EnvFast+"=1")
	}
	// nbclient enforces the per-cell limit; the whole run also gets a limit in case the kernel
	// or nbconvert hangs outside a cell (start-up, shutdown).
	limit := opt.NotebookTimeout
	if limit == 0 {
		limit = opt.CellTimeout*time.Duration(r.Cells+1) + 2*time.Minute
	}
	runCtx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(runCtx, nbc.Bin, nbconvertArgs(nbc.Major, path, opt.OutDir, name, opt.CellTimeout)...)
	cmd.Env = env
	// Its own process group, so that a Ctrl-C reaches only this program, which then stops the
	// whole run itself (the kernel is in another session and would not get the signal).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		killRun(cmd.Process.Pid, r.marker)
		return nil
	}
	var stderr bytes.Buffer
	cmd.Stdout = logFile
	cmd.Stderr = io.MultiWriter(logFile, &stderr)
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	if n := killRun(0, r.marker); n > 0 {
		fmt.Fprintf(logFile, "\nkernel exec: stopped %d processes of this run still running after nbconvert exited\n", n)
	}
	switch {
	case ctx.Err() != nil:
		r.Err = "interrupted: stopped nbconvert, the kernel and the cell programs"
	case runCtx.Err() != nil:
		r.Err = fmt.Sprintf("timeout: the whole notebook ran past %s (stopped nbconvert, the kernel and the cell programs)", limit)
	case runErr != nil:
		r.Err = nbconvertFailure(stderr.String(), runErr)
		if n := timedOutCell(stderr.String(), src); n > 0 {
			r.Err = fmt.Sprintf("cell %d: %s", n, r.Err)
		}
	}

	nb, err := readNotebook(executed)
	if err != nil {
		if r.Err == "" {
			r.Err = "no executed notebook was written: " + err.Error()
		}
		return r
	}
	r.Executed = executed
	r.Failures = inspect(nb)
	if opt.HTML {
		if err := exportHTML(nbc, executed, opt.OutDir, logFile); err != nil && r.Err == "" {
			r.Err = err.Error()
		}
	}
	return r
}

// nbconvert is the jupyter-nbconvert executable `exec` runs (the lab venv's nbconvert 7, or
// Debian's nbconvert 6 where JupyterLab could not be installed) and its major version.
type nbconvert struct {
	Bin     string
	Version string
	Major   int
}

// newNBConvert finds nbconvert (see jupyterSub) and asks it for its version.
func newNBConvert() (nbconvert, error) {
	bin, err := jupyterSub("nbconvert")
	if err != nil {
		return nbconvert{}, err
	}
	cmd := exec.Command(bin, "--version")
	cmd.Env = jupyterEnv()
	out, err := cmd.Output()
	if err != nil {
		return nbconvert{}, fmt.Errorf("%s --version: %w", bin, err)
	}
	v := strings.TrimSpace(string(out))
	major, err := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if err != nil {
		return nbconvert{}, fmt.Errorf("%s --version printed %q, not a version", bin, v)
	}
	return nbconvert{Bin: bin, Version: v, Major: major}, nil
}

// nbconvertArgs is the command line (after jupyter-nbconvert) that executes one notebook with
// nbconvert of the given major version. --allow-errors makes nbconvert run every cell and always
// write the executed notebook, which the checker then judges (cells that failed are found from
// their outputs). Streams are coalesced so that a progress display printing \r lines does not
// leave hundreds of outputs: nbconvert 6 does it after executing; nbconvert 7 runs its
// CoalesceStreamsPreprocessor before executing, so it is added once more after.
func nbconvertArgs(major int, path, outDir, name string, cellTimeout time.Duration) []string {
	args := []string{
		"--to", "notebook", "--execute", "--allow-errors",
		"--ExecutePreprocessor.kernel_name=" + kernelName,
		// Whole seconds, rounded up: nbclient reads 0 as no limit.
		"--ExecutePreprocessor.timeout=" + strconv.Itoa(int(math.Ceil(cellTimeout.Seconds()))),
		"--ExecutePreprocessor.startup_timeout=120",
		"--CoalesceStreamsPreprocessor.enabled=True",
	}
	if major >= 7 {
		args = append(args, "--NotebookExporter.preprocessors=nbconvert.preprocessors.CoalesceStreamsPreprocessor")
	}
	return append(args, "--output-dir", outDir, "--output", name, path)
}

// exportHTML writes the HTML export of an executed notebook next to it.
func exportHTML(nbc nbconvert, executed, outDir string, log io.Writer) error {
	cmd := exec.Command(nbc.Bin, "--to", "html", "--output-dir", outDir, executed)
	cmd.Env = jupyterEnv()
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = log, io.MultiWriter(log, &stderr)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("HTML export failed: %v: %s", err, lastLine(stderr.String()))
	}
	return nil
}

var (
	cellTimeoutRe = regexp.MustCompile(`(?i)(CellTimeoutError|Cell execution timed out|Timeout waiting for execute reply[^\n]*)`)
	deadKernelRe  = regexp.MustCompile(`DeadKernelError[^\n]*|Kernel died[^\n]*`)
	noKernelRe    = regexp.MustCompile(`NoSuchKernel[^\n]*`)
	// nbclient's CellTimeoutError message: "... after 5 seconds.", then a preview of the cell
	// between two dashed lines.
	timeoutAfterRe = regexp.MustCompile(`timed out while it was being executed, after (\d+) seconds`)
	previewRe      = regexp.MustCompile(`(?s)preview of the cell contents:\n-+\n(.*?)\n-+\n`)
)

// timedOutCell finds which cell nbclient's timeout message previews (1-based), or 0.
func timedOutCell(stderr string, nb *notebook) int {
	m := previewRe.FindStringSubmatch(clean(stderr))
	if m == nil {
		return 0
	}
	// The preview is the cell's first lines (a long cell is cut with "..."): compare those.
	lines := strings.Split(m[1], "\n")
	if len(lines) > 3 {
		lines = lines[:3]
	}
	prefix := strings.Join(lines, "\n")
	found := 0
	for i, c := range nb.Cells {
		if c.isCode() && strings.HasPrefix(string(c.Source), prefix) {
			if found != 0 {
				return 0 // ambiguous
			}
			found = i + 1
		}
	}
	return found
}

// nbconvertFailure explains a non-zero nbconvert exit in one line from its stderr.
func nbconvertFailure(stderr string, err error) string {
	s := clean(stderr)
	switch {
	case cellTimeoutRe.MatchString(s):
		if m := timeoutAfterRe.FindStringSubmatch(s); m != nil {
			return "timeout: ran past the cell time limit of " + m[1] + "s"
		}
		return "timeout: ran past the cell time limit (" + strings.TrimSpace(cellTimeoutRe.FindString(s)) + ")"
	case deadKernelRe.MatchString(s):
		return "the kernel died: " + strings.TrimSpace(deadKernelRe.FindString(s))
	case noKernelRe.MatchString(s):
		return "kernel not found: " + strings.TrimSpace(noKernelRe.FindString(s)) + " (run `go run ./kernel install`)"
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return fmt.Sprintf("nbconvert exited with status %d: %s", exitErr.ExitCode(), lastLine(s))
	}
	return "nbconvert: " + err.Error()
}

// lastLine returns the last non-empty line that is not a GoNB log line (those start with a
// klog header such as "I1127 03:32:46.877954").
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !klogLine.MatchString(l) {
			return l
		}
	}
	return ""
}

var klogLine = regexp.MustCompile(`^[IWEF]\d{4} \d\d:\d\d:\d\d`)
