package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// A goTool is a Go program the kernel needs, pinned to one version.
type goTool struct {
	Name     string // binary name
	Package  string // package path to build
	Version  string // module version
	Optional bool   // a build failure is reported and tolerated
}

// The pinned tools. GoNB runs cells with `go`, and needs goimports to fill in imports; gopls
// gives auto-complete and documentation in the browser UI and is optional (GoNB runs without it).
// gopls v0.23.0 is the last release that builds with Go 1.26.
var goTools = []goTool{
	{Name: "gonb", Package: "github.com/janpfeifer/gonb", Version: "v0.11.3"},
	{Name: "goimports", Package: "golang.org/x/tools/cmd/goimports", Version: "v0.52.0"},
	{Name: "gopls", Package: "golang.org/x/tools/gopls", Version: "v0.23.0", Optional: true},
}

// binDir is the stable directory holding the tools. GoNB's kernel.json records the absolute path
// of the gonb binary, so it must not live in a temporary or per-build directory.
func binDir() string { return filepath.Join(labdir.Dir(), "bin") }

// goCommand finds the go command: on PATH, else the one of the toolchain running this program.
func goCommand() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the go command is not on PATH; install Go 1.26 (https://go.dev/dl) and add its bin directory to PATH")
}

// goVersion is the `go env GOVERSION` of the go command: the tools are rebuilt when it changes.
func goVersion(goBin string) (string, error) {
	out, err := exec.Command(goBin, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("%s env GOVERSION: %w", goBin, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// toolsStamp is what a complete bin directory records: the pins and the Go version used.
func toolsStamp(goVer string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "built with %s\n", goVer)
	for _, t := range goTools {
		fmt.Fprintf(&b, "%s %s@%s\n", t.Name, t.Package, t.Version)
	}
	return b.String()
}

// toolsInstalled reports whether binDir holds the pinned tools built by this Go version.
func toolsInstalled(goBin string) bool {
	v, err := goVersion(goBin)
	if err != nil {
		return false
	}
	return fetch.Stamped(binDir(), toolsStamp(v))
}

// installTools builds the pinned tools into binDir, unless they are there already. It reports
// what it did on log. `go install pkg@version` cannot be used: for gonb the module proxy refuses
// the version list that the deprecation check asks for. Building from inside a throw-away module
// that declares the tool (Go's `tool` directive) works, so each tool gets its own module (one
// module for all would let gopls's requirements move goimports' x/tools version).
func installTools(log *logger, force bool) (changed bool, err error) {
	goBin, err := goCommand()
	if err != nil {
		return false, err
	}
	goVer, err := goVersion(goBin)
	if err != nil {
		return false, err
	}
	stamp := toolsStamp(goVer)
	dest := binDir()
	if !force && fetch.Stamped(dest, stamp) {
		log.printf("tools: gonb, goimports, gopls already built in %s", dest)
		return false, nil
	}
	if force {
		// InstallDir skips a stamped destination: drop the stamp so it rebuilds.
		_ = os.Remove(filepath.Join(dest, fetch.StampFile))
	}
	err = fetch.InstallDir(dest, stamp, func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil { // temporary directories are private
			return err
		}
		for _, t := range goTools {
			log.printf("tools: building %s@%s (the first build takes a few minutes)", t.Package, t.Version)
			if err := buildTool(goBin, t, tmp); err != nil {
				if t.Optional {
					log.printf("tools: %s is optional, continuing without it: %v", t.Name, err)
					continue
				}
				return err
			}
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	log.printf("tools: installed in %s", dest)
	return true, nil
}

// buildTool builds one tool into gobin from a temporary module that declares it as a tool.
func buildTool(goBin string, t goTool, gobin string) error {
	mod, err := os.MkdirTemp("", "peftlab-tool-"+t.Name+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(mod)
	goMod := "module peftlab.local/tools/" + t.Name + "\n\ngo 1.26\n"
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOBIN="+gobin)
	steps := [][]string{
		{"get", "-tool", t.Package + "@" + t.Version},
		{"install", "tool"},
	}
	for _, args := range steps {
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = mod, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("building %s@%s: go %s: %w\n%s", t.Package, t.Version, strings.Join(args, " "), err, tail(out.String(), 3000))
		}
	}
	if _, err := os.Stat(filepath.Join(gobin, t.Name)); err != nil {
		return fmt.Errorf("building %s@%s: no %s binary was produced", t.Package, t.Version, t.Name)
	}
	return nil
}

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
