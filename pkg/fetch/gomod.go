package fetch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// GoModule downloads module@version into the Go module cache (through the configured module
// proxy, with the go command's own checksum-database verification) and returns the directory
// holding its files. When sum is not empty it must equal the module's go.sum hash ("h1:..."),
// pinning the content independently of the checksum database. The module cache directory is
// read-only: copy what you need out of it.
func GoModule(module, version, sum string) (dir string, err error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, serr := os.Stat(goBin); serr != nil {
			return "", fmt.Errorf("Go module %s@%s: the go command is not on PATH", module, version)
		}
	}
	spec := module + "@" + version
	cmd := exec.Command(goBin, "mod", "download", "-json", spec)
	// Run outside any module or workspace so nothing's go.mod or go.sum is touched.
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var info struct{ Dir, Sum, Error string }
	if jerr := json.Unmarshal(stdout.Bytes(), &info); jerr != nil {
		if runErr != nil {
			return "", fmt.Errorf("go mod download %s: %w\n%s", spec, runErr, tail(stderr.String(), 2000))
		}
		return "", fmt.Errorf("go mod download %s: unreadable output: %w", spec, jerr)
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", spec, info.Error)
	}
	if runErr != nil {
		return "", fmt.Errorf("go mod download %s: %w\n%s", spec, runErr, tail(stderr.String(), 2000))
	}
	if sum != "" && info.Sum != sum {
		return "", fmt.Errorf("Go module %s has checksum %s, want the pinned %s", spec, info.Sum, sum)
	}
	if info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: no directory reported", spec)
	}
	return info.Dir, nil
}
