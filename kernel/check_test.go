package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The notebooks in testdata/executed are real nbconvert outputs of the planted notebooks (with
// the GoNB kernel and --raw_error), so the checker is tested on what GoNB actually writes
// without needing Jupyter.
func TestInspectExecutedNotebooks(t *testing.T) {
	cases := map[string]string{
		"pass.ipynb":      "",
		"panic.ipynb":     "cell 2: panic: runtime error: index out of range [3] with length 0",
		"exit.ipynb":      "cell 2: exit status 3",
		"compile.ipynb":   "cell 2: compile error: undefined: nosuchThing (line 2)",
		"failtest.ipynb":  "cell 2: --- FAIL: TestPlanted (0.00s)",
		"shellfail.ipynb": "cell 2: exit status 1",
	}
	for name, want := range cases {
		nb, err := readNotebook(filepath.Join("testdata", "executed", name))
		if err != nil {
			t.Fatal(err)
		}
		fails := inspect(nb)
		var got string
		if len(fails) > 0 {
			got = fails[0].String()
		}
		if got != want {
			t.Errorf("%s: first failure %q, want %q", name, got, want)
		}
		if want != "" && len(fails) != 1 {
			t.Errorf("%s: %d failures %v, want 1", name, len(fails), fails)
		}
	}
}

func code(src string, count int, outs ...output) cell {
	c := cell{CellType: "code", Source: multiline(src), Outputs: outs}
	if count > 0 {
		c.ExecutionCount = &count
	}
	return c
}

func stream(name, text string) output {
	return output{OutputType: "stream", Name: name, Text: multiline(text)}
}

func TestInspectRules(t *testing.T) {
	tagged := func(c cell, tag string) cell {
		c.Metadata = map[string]any{"tags": []any{tag}}
		return c
	}
	cases := []struct {
		name string
		cell cell
		want string // "" = passes
	}{
		{"clean", code("%%\nfmt.Println(1)", 1, stream("stdout", "1\n")), ""},
		{"warning on stderr", code("%%", 1, stream("stderr", "W1127 some library warning\nfailed to open cache, continuing\n")), ""},
		{"word FAIL inside a line", code("%%", 1, stream("stdout", "the test did not FAIL\n")), ""},
		{"not executed", code("%%\nfmt.Println(1)", 0), "not executed"},
		{"fatal error", code("%%", 1, stream("stderr", "fatal error: all goroutines are asleep - deadlock!\n\ngoroutine 1 [chan receive]:\n")), "fatal error: all goroutines are asleep - deadlock!"},
		{"killed", code("%%", 1, stream("stderr", "signal: killed\n")), "signal: killed"},
		{"panic coloured by GoNB", code("%%", 1, stream("stderr", "panic: boom\n\ngoroutine 1 [running]:\nmain.main()\n\t \x1b[7m[[ Cell [2] Line 3 ]]\x1b[0m /tmp/gonb/main.go:12\nexit status 2\n")), "panic: boom"},
		{"error output", code("%%", 1, output{OutputType: "error", Ename: "ERROR", Evalue: "failed to run \"go get\": exit status 1"}), "failed to run \"go get\": exit status 1"},
		{"named error", code("%%", 1, output{OutputType: "error", Ename: "ValueError", Evalue: "bad"}), "ValueError: bad"},
		{"allowed to raise", tagged(code("%%", 1, stream("stderr", "exit status 1\n")), tagRaises), ""},
		{"expected output lost", tagged(code("%%\nnbui.Show(c)", 1), tagExpectOutput), "no output (tagged expect-output)"},
		{"expected output present", tagged(code("%%\nnbui.Show(c)", 1, output{OutputType: "display_data"}), tagExpectOutput), ""},
		{"empty cell ignored", code("  \n", 0), ""},
		// What a program prints is output: only %test cells' reports count as test failures.
		{"FAIL lines printed by a program", code("%%\nfmt.Println(report)", 1,
			stream("stdout", "FAIL: 3 of 10 misclassified\nFAIL\n--- FAIL: not a test\n")), ""},
		{"FAIL line on stderr from a program", code("%%", 1, stream("stderr", "FAIL: retrying the download\n")), ""},
		{"failing %test", code("func TestX(t *testing.T) { t.Fail() }\n\n%test", 1,
			stream("stdout", "=== RUN   TestX\n--- FAIL: TestX (0.00s)\nFAIL\n"), stream("stderr", "exit status 1\n")), "--- FAIL: TestX (0.00s)"},
		{"%test failing without a test line", code("%test", 1, stream("stdout", "FAIL\n")), "FAIL"},
		{"passing %test", code("%test", 1, stream("stdout", "=== RUN   TestX\n--- PASS: TestX (0.00s)\nPASS\n")), ""},
		// nbconvert 7 leaves the stream chunks GoNB sent as they came: a line split over two.
		{"panic split over two stream outputs", code("%%", 1, stream("stderr", "panic: "), stream("stderr", "runtime error: boom\n\ngoroutine 1 [running]:\n")),
			"panic: runtime error: boom"},
		{"exit status split from its number", code("%%", 1, stream("stdout", "ok\n"), stream("stderr", "exit "), stream("stderr", "status 3\n")),
			"exit status 3"},
		{"stdout between stderr chunks does not join them", code("%%", 1, stream("stderr", "exit status"), stream("stdout", " 3\n")), ""},
		{"unknown special command", code("%tset", 1, stream("stderr", "\"%tset\" unknown or not implemented yet.\n")),
			"unknown special command %tset"},
	}
	for _, c := range cases {
		nb := &notebook{Cells: []cell{{CellType: "markdown", Source: "# t"}, c.cell}}
		fails := inspect(nb)
		switch {
		case c.want == "" && len(fails) > 0:
			t.Errorf("%s: unexpected failure %v", c.name, fails)
		case c.want != "" && len(fails) == 0:
			t.Errorf("%s: not caught, want %q", c.name, c.want)
		case c.want != "" && (fails[0].Cell != 2 || !strings.HasPrefix(fails[0].Reason, c.want)):
			t.Errorf("%s: got %v, want cell 2: %q", c.name, fails[0], c.want)
		}
	}
}

// nbclient's timeout message (captured from a real run) names the limit and previews the cell,
// which identifies the cell that hung.
func TestTimeoutMessage(t *testing.T) {
	stderr, err := os.ReadFile(filepath.Join("testdata", "executed", "timeout.stderr"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := nbconvertFailure(string(stderr), nil), "timeout: ran past the cell time limit of 3s"; got != want {
		t.Errorf("nbconvertFailure = %q, want %q", got, want)
	}
	nb, err := readNotebook(filepath.Join("testdata", "timeout.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	if got := timedOutCell(string(stderr), nb); got != 2 {
		t.Errorf("timedOutCell = %d, want 2", got)
	}
	if got := lastLine("Traceback...\nValueError: bad kernel\nI1127 03:32:46.877954    6308 main.go:252] Exiting...\n"); got != "ValueError: bad kernel" {
		t.Errorf("lastLine skips GoNB log lines: got %q", got)
	}
}
