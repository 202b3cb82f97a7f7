// Package nbuitest checks in headless Chromium that nbui charts render, for tests of nbui itself
// and of anything that produces chart HTML (executed notebooks exported to HTML, saved reports).
//
//	dom := nbuitest.DumpDOM(t, "out/notebooks/00_welcome.html")
//	if rendered, failed := nbuitest.Charts(dom); rendered == 0 || failed > 0 { t.Errorf(...) }
//
// It needs Debian's chromium. When chromium is missing the test is skipped, except under
// CI=true, where it fails: in CI every check must run.
package nbuitest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SkipOrFail skips the test, or fails it when CI=true.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: this check may not be skipped)", why)
	}
	t.Skip(why)
}

// Chromium returns the path of the chromium binary, or skips the test (fails it under CI=true).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	SkipOrFail(t, "chromium is not installed (on Debian: apt-get install chromium)")
	return ""
}

// DumpDOM loads the HTML file in headless Chromium and returns the DOM after its scripts ran.
// Every network request fails (the proxy is a closed port and no host name resolves), so what
// renders, renders offline.
func DumpDOM(t testing.TB, file string) string {
	t.Helper()
	bin := Chromium(t)
	abs, err := filepath.Abs(file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+t.TempDir(),
		"--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
		// Let timers and animation frames run before the DOM is dumped.
		"--virtual-time-budget=5000",
		"--dump-dom", "file://"+abs)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", file, err, tail(stderr.String(), 3000))
	}
	return stdout.String()
}

// Charts counts the nbui charts in a dumped DOM that rendered (ECharts drew them) and that
// failed (their div shows the error instead).
func Charts(dom string) (rendered, failed int) {
	return strings.Count(dom, `data-nbui-chart="rendered"`), strings.Count(dom, `data-nbui-chart="failed"`)
}

// Instances counts the ECharts instances in a dumped DOM (ECharts marks every element it
// initialised with the attribute _echarts_instance_).
func Instances(dom string) int {
	return strings.Count(dom, `_echarts_instance_="`)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
