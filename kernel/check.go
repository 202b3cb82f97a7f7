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
// as cell errors. A panic, os.Exit(n), a failing %test, a failing !shell command or a mistyped
// special command only print to the cell's streams, and nbconvert finishes with status 0.
//
// What a cell's program prints is its own business: a line "FAIL: ..." on stdout is output, not
// a failure. Only what GoNB and the Go runtime write mark a failure, and Go test reports are
// read only in cells that run %test (which also end with "exit status 1" when a test failed).
var (
	// stderrFailure matches lines GoNB or the Go runtime print on stderr when a cell's program
	// or shell command failed. "exit status N" is how GoNB reports any non-zero exit.
	stderrFailure = regexp.MustCompile(`(?m)^(panic: .*|fatal error: .*|exit status [1-9][0-9]*|signal: [a-z ]+)\s*$`)
	// unknownSpecial is GoNB's answer to a mistyped special command ("%tset"): it runs nothing
	// of the cell and says so on stderr only.
	unknownSpecial = regexp.MustCompile(`(?m)^"(%[^"]*)" unknown or not implemented yet\.?\s*$`)
	// testFailure matches a Go test report's failure lines ("--- FAIL: TestX (0.00s)" and the
	// final "FAIL"), which %test writes to stdout.
	testFailure = regexp.MustCompile(`(?m)^(--- FAIL: .*|FAIL(?:[ \t].*)?)\s*$`)
	// testCommand matches a cell line running %test.
	testCommand = regexp.MustCompile(`(?m)^\s*%test\b`)
	ansiEscape  = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")
)

// inspect returns the failed cells of an executed notebook, in cell order. A code cell failed
// when it was not executed, has an error output, has a failure line on a stream (see
// stderrFailure, unknownSpecial, and testFailure in %test cells), or is tagged expect-output
// and has no output.
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
	runsTest := testCommand.MatchString(string(c.Source))
	for _, o := range coalesceStreams(c.Outputs) {
		switch o.OutputType {
		case "error":
			reasons = append(reasons, errorReason(o))
		case "stream":
			if streamFailure != "" {
				continue
			}
			text := clean(string(o.Text))
			// A test's own failure line says more than the "exit status 1" that follows it.
			if runsTest && o.Name == "stdout" {
				if m := testFailure.FindString(text); m != "" {
					streamFailure = strings.TrimSpace(m)
				}
			}
			if o.Name != "stderr" {
				continue
			}
			if m := unknownSpecial.FindStringSubmatch(text); m != nil {
				streamFailure = fmt.Sprintf("unknown special command %s: GoNB ran nothing of the cell", m[1])
			} else if m := stderrFailure.FindString(text); m != "" {
				streamFailure = strings.TrimSpace(m)
			} else if m := testFailure.FindString(text); runsTest && m != "" {
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

// coalesceStreams merges each run of consecutive stream outputs with the same name into one, so
// that a line GoNB sent in two chunks ("panic: " then "runtime error: ...") is read whole.
// nbconvert 6 merges them itself after executing; nbconvert 7 runs its CoalesceStreams
// preprocessor before executing (exec asks for it after too, see nbconvertArgs), and an executed
// notebook from elsewhere may not be merged at all. Text is copied; outs is not modified.
func coalesceStreams(outs []output) []output {
	var merged []output
	for _, o := range outs {
		if n := len(merged); n > 0 && o.OutputType == "stream" && merged[n-1].OutputType == "stream" && merged[n-1].Name == o.Name {
			merged[n-1].Text += o.Text
			continue
		}
		merged = append(merged, o)
	}
	return merged
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
