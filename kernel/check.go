package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// cellFailure is one failed cell of an executed notebook.
type cellFailure struct {
	Cell   int    // 1-based position of the cell in the notebook (markdown cells count)
	Reason string // one line, e.g. "panic: runtime error: index out of range"
}

func (f cellFailure) String() string { return fmt.Sprintf("cell %d: %s", f.Cell, f.Reason) }

// Cell tags the checker honours (set them in Jupyter's property inspector):
const (
	// tagRaises marks a cell that is meant to fail (e.g. a tutorial showing an error message),
	// the same tag nbclient uses to allow an error.
	tagRaises = "raises-exception"
	// tagExpectOutput marks a cell whose outputs must not be empty: a display lost when the cell
	// program exits (trap 3 in the notes: call gonbui.Sync) is then caught.
	tagExpectOutput = "expect-output"
)

// Why stream text alone must be inspected: GoNB reports only compile errors and failed `go get`
// as cell errors. A panic, os.Exit(n), a failing %test or a failing !shell command only print
// to the cell's streams, and nbconvert finishes with status 0.
var (
	// stderrFailure matches lines GoNB or the Go runtime print on stderr when a cell's program
	// or shell command failed. "exit status N" is how GoNB reports any non-zero exit.
	stderrFailure = regexp.MustCompile(`(?m)^(panic: .*|fatal error: .*|exit status [1-9][0-9]*|signal: [a-z ]+|--- FAIL: .*|FAIL\b.*)\s*$`)
	// stdoutFailure matches Go test failures (%test writes its report to stdout) and panics.
	stdoutFailure = regexp.MustCompile(`(?m)^(--- FAIL: .*|FAIL\b.*|panic: .*)\s*$`)
	ansiEscape    = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
)

// inspect returns the failed cells of an executed notebook, in cell order. A code cell failed
// when it was not executed, has an error output, prints a failure line on a stream (see
// stderrFailure, stdoutFailure), or is tagged expect-output and has no output.
func inspect(nb *notebook) []cellFailure {
	var fails []cellFailure
	for i, c := range nb.Cells {
		if !c.isCode() {
			continue
		}
		tags := c.tags()
		if slices.Contains(tags, tagRaises) {
			continue
		}
		if reason := cellFailed(c, slices.Contains(tags, tagExpectOutput)); reason != "" {
			fails = append(fails, cellFailure{Cell: i + 1, Reason: reason})
		}
	}
	return fails
}

// cellFailed returns why one code cell failed, or "" if it did not.
func cellFailed(c cell, expectOutput bool) string {
	if c.ExecutionCount == nil {
		return "not executed"
	}
	var reasons []string
	var streamFailure string
	for _, o := range c.Outputs {
		switch o.OutputType {
		case "error":
			reasons = append(reasons, errorReason(o))
		case "stream":
			re := stdoutFailure
			if o.Name == "stderr" {
				re = stderrFailure
			}
			if m := re.FindString(clean(string(o.Text))); m != "" && streamFailure == "" {
				streamFailure = strings.TrimSpace(m)
			}
		}
	}
	if streamFailure != "" {
		reasons = append(reasons, streamFailure)
	}
	if len(reasons) == 0 && expectOutput && len(c.Outputs) == 0 {
		return "no output (tagged " + tagExpectOutput + "): a display may have been lost, call gonbui.Sync() after displaying"
	}
	if len(reasons) == 0 {
		return ""
	}
	return reasons[0]
}

// errorReason makes one line from an error output. GoNB's ename is a bare "ERROR"; with
// --raw_error (which `exec` sets) a compile error's evalue holds the compiler's lines
// ("./main.go:10:6: undefined: x") and each traceback entry starts with the cell line it maps to
// ("Cell[4]: Line 2") and ends with the message.
func errorReason(o output) string {
	evalue := clean(o.Evalue)
	for _, line := range strings.Split(evalue, "\n") {
		m := compilerMessage.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		msg := m[1]
		for _, tb := range o.Traceback {
			tb = strings.TrimSpace(clean(tb))
			if strings.HasSuffix(tb, msg) {
				// GoNB numbers cells by execution count; the cell line is what helps here.
				first, _, _ := strings.Cut(tb, "\n")
				if _, line, ok := strings.Cut(first, ": Line "); ok && strings.HasPrefix(first, "Cell[") {
					msg += " (line " + line + ")"
				}
				break
			}
		}
		return "compile error: " + msg
	}
	var msg string
	for _, line := range strings.Split(evalue, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "# ") {
			msg = line
			break
		}
	}
	if o.Ename != "" && o.Ename != "ERROR" {
		msg = strings.TrimSpace(o.Ename + ": " + msg)
	}
	if msg == "" {
		msg = "error output"
	}
	return msg
}

// compilerMessage matches a Go compiler or vet line, "./main.go:10:6: message".
var compilerMessage = regexp.MustCompile(`^\S+\.go:\d+(?::\d+)?: (.+)$`)

// clean removes terminal colour codes (GoNB highlights cell references with them).
func clean(s string) string { return ansiEscape.ReplaceAllString(s, "") }
