package fetch

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Wheel is a pinned PyPI wheel to install as plain files: no virtual environment, no
// dependencies, no install scripts (a wheel has none). It is for wheels that carry a native
// library peftlab loads itself, such as a PJRT plugin.
type Wheel struct {
	Name    string // the distribution, e.g. "xla-cpu-pjrt"
	Version string // exact version, e.g. "0.0.1"
	// SHA256 is the hex digest of the wheel file PyPI serves for this platform (pip's --hash).
	SHA256 string

	// Keep, when set, selects the files to extract by their slash-separated path inside the
	// wheel. Nil keeps every file.
	Keep func(path string) bool
	// Selection names what Keep selects; it is recorded in the stamp so that changing the
	// selection re-extracts. Leave empty when Keep is nil.
	Selection string
}

func (w Wheel) spec() string { return w.Name + "==" + w.Version }

// Stamp is what an install of w records in dest.
func (w Wheel) Stamp() string {
	s := fmt.Sprintf("pypi %s\nsha256 %s\n", w.spec(), w.SHA256)
	if w.Keep != nil || w.Selection != "" {
		s += fmt.Sprintf("selection %s\n", w.Selection)
	}
	return s
}

// Installed reports whether dest already holds this exact wheel.
func (w Wheel) Installed(dest string) bool { return Stamped(dest, w.Stamp()) }

// Fetch downloads, verifies and installs w into dest: pip (`python3 -m pip download --no-deps
// --require-hashes`, so the machine's index configuration applies) fetches the wheel into a
// temporary directory, its SHA-256 is checked again here, and the selected files are extracted
// into dest atomically (InstallDir). $PEFTLAB_PYTHON names another interpreter. A second call
// with the same pin is a no-op.
func (w Wheel) Fetch(dest string) error {
	if w.Name == "" || w.Version == "" || len(w.SHA256) != 64 {
		return fmt.Errorf("wheel %q: name, version and a sha256 digest are all required", w.spec())
	}
	if w.Installed(dest) {
		return nil
	}
	dl, err := os.MkdirTemp("", "peftlab-wheel-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	req := filepath.Join(dl, "requirements.txt")
	if err := os.WriteFile(req, []byte(fmt.Sprintf("%s --hash=sha256:%s\n", w.spec(), w.SHA256)), 0o644); err != nil {
		return err
	}
	python := os.Getenv("PEFTLAB_PYTHON")
	if python == "" {
		python = "python3"
	}
	cmd := exec.Command(python, "-m", "pip", "download", "--disable-pip-version-check", "--no-input", "--no-cache-dir",
		"--no-deps", "--only-binary=:all:", "--require-hashes", "-r", req, "-d", filepath.Join(dl, "wheel"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("download the wheel %s from PyPI with %s -m pip (pip is needed: Debian's python3-pip): %w\n%s",
			w.spec(), python, err, strings.TrimSpace(out.String()))
	}
	files, _ := filepath.Glob(filepath.Join(dl, "wheel", "*.whl"))
	if len(files) != 1 {
		return fmt.Errorf("download the wheel %s: pip left %d wheel files, want 1", w.spec(), len(files))
	}
	if err := VerifySHA256(files[0], w.SHA256); err != nil {
		return fmt.Errorf("wheel %s: %w", w.spec(), err)
	}
	return InstallDir(dest, w.Stamp(), func(tmp string) error {
		if err := os.Chmod(tmp, 0o755); err != nil { // temporary directories are private
			return err
		}
		return w.extract(files[0], tmp)
	})
}

// extract unpacks the selected members of the wheel file into dir.
func (w Wheel) extract(file, dir string) error {
	zr, err := zip.OpenReader(file)
	if err != nil {
		return fmt.Errorf("wheel %s: %w", w.spec(), err)
	}
	defer zr.Close()
	n := 0
	for _, f := range zr.File {
		name := f.Name
		if f.FileInfo().IsDir() || (w.Keep != nil && !w.Keep(name)) {
			continue
		}
		clean := path.Clean(name)
		if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("wheel %s: unsafe path %q", w.spec(), name)
		}
		target := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		if err := extractFile(f, target); err != nil {
			return fmt.Errorf("wheel %s: %s: %w", w.spec(), name, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("wheel %s: nothing matched the selection %q", w.spec(), w.Selection)
	}
	return nil
}

func extractFile(f *zip.File, target string) error {
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	mode := os.FileMode(0o644)
	if f.Mode()&0o111 != 0 || strings.HasSuffix(f.Name, ".so") {
		mode = 0o755
	}
	out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
