package dataset

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/fetch"
)

// A stamp says an install completed; it says nothing about the files since. So every install
// also records each file's SHA-256, size and modification time in manifestFile, and:
//
//   - loading a set (open) checks every file's size and time against it, and hashes the files
//     whose time changed: a file altered so that it still parses (a flipped label) is refused,
//     for the price of a few stats when nothing changed;
//   - Install checks the same before reporting a set installed, and reinstalls a damaged one;
//   - Verify (`kernel data -verify`) hashes every file, and reinstalls what does not match.
const manifestFile = ".peftlab-files"

// manifestEntry is one installed file.
type manifestEntry struct {
	Path    string `json:"path"` // slash-separated, relative to the set's directory
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	SHA256  string `json:"sha256"`
}

type manifest struct {
	Files []manifestEntry `json:"files"`
}

// errNoManifest: the set was installed by a peftlab that recorded no checksums.
var errNoManifest = errors.New("no checksums recorded (installed by an older peftlab)")

// writeManifest records every regular file of dir (but the stamp and the manifest).
func writeManifest(dir string) error {
	var m manifest
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if rel == fetch.StampFile || rel == manifestFile {
			return nil
		}
		e, err := fileEntry(path)
		if err != nil {
			return err
		}
		e.Path = filepath.ToSlash(rel)
		m.Files = append(m.Files, e)
		return nil
	})
	if err != nil {
		return fmt.Errorf("record the installed files' checksums: %w", err)
	}
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(filepath.Join(dir, manifestFile), append(data, '\n'))
}

func fileEntry(path string) (manifestEntry, error) {
	f, err := os.Open(path)
	if err != nil {
		return manifestEntry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return manifestEntry{}, err
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return manifestEntry{}, fmt.Errorf("read %s: %w", path, err)
	}
	return manifestEntry{Size: st.Size(), ModTime: st.ModTime().UnixNano(), SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func readManifest(dir string) (*manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoManifest
	}
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s is damaged: %w", manifestFile, err)
	}
	return &m, nil
}

// checkFiles compares dir with its manifest. full hashes every file; otherwise only files
// whose size or modification time changed are hashed (a changed size alone is damage).
// It returns errNoManifest for a set installed without one.
func checkFiles(dir string, full bool) error {
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	var problems []string
	for _, e := range m.Files {
		path := filepath.Join(dir, filepath.FromSlash(e.Path))
		st, err := os.Stat(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, e.Path+" is missing")
			continue
		case err != nil:
			problems = append(problems, err.Error())
			continue
		case st.Size() != e.Size:
			problems = append(problems, fmt.Sprintf("%s has %d bytes, %d were installed", e.Path, st.Size(), e.Size))
			continue
		case !full && st.ModTime().UnixNano() == e.ModTime:
			continue
		}
		got, err := fileEntry(path)
		if err != nil {
			problems = append(problems, err.Error())
		} else if got.SHA256 != e.SHA256 {
			problems = append(problems, fmt.Sprintf("%s changed after it was installed (SHA-256 %s, installed %s)", e.Path, got.SHA256[:12], e.SHA256[:12]))
		}
		if len(problems) >= 5 {
			problems = append(problems, "...")
			break
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// adopt records the checksums of a set installed without them, after checking the pinned
// files' checksums where the set has pins (the copied sets); files of a set unpacked from a
// verified npm tarball are taken as they are.
func adopt(s Set, dir string) error {
	for _, f := range s.files {
		if err := fetch.VerifySHA256(filepath.Join(dir, f.name), f.sha256); err != nil {
			return err
		}
	}
	return writeManifest(dir)
}

// Verify hashes every file of the named installed set and compares it with the checksums
// recorded at install (and, for a set installed before checksums were recorded, with its pins
// where it has them). It returns ErrNotInstalled for a missing set.
func Verify(name string) error {
	s, err := lookup(name)
	if err != nil {
		return err
	}
	dir := Dir(name)
	if !fetch.Stamped(dir, s.stamp) {
		return fmt.Errorf("%w: %s", ErrNotInstalled, name)
	}
	err = checkFiles(dir, true)
	if errors.Is(err, errNoManifest) {
		for _, f := range s.files {
			if verr := fetch.VerifySHA256(filepath.Join(dir, f.name), f.sha256); verr != nil {
				return verr
			}
		}
		if len(s.files) > 0 {
			return nil
		}
	}
	return err
}

// State says whether the named set is "installed", "missing", "damaged" (a quick check of
// its files against their recorded checksums fails) or "unverified" (installed by a peftlab
// that recorded none; the next Install records them).
func State(name string) string {
	s, err := lookup(name)
	if err != nil || !fetch.Stamped(Dir(name), s.stamp) {
		return "missing"
	}
	switch err := checkFiles(Dir(name), false); {
	case err == nil:
		return "installed"
	case errors.Is(err, errNoManifest):
		return "unverified"
	default:
		return "damaged"
	}
}

// removeLeftovers removes what killed installs of the named set left beside its directory:
// npm download directories, unfinished install directories and replaced copies (tens of MB
// each). The caller holds the set's install lock, so no live install owns them.
func removeLeftovers(name string) (removed []string, err error) {
	parent := filepath.Dir(Dir(name))
	entries, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		n := e.Name()
		for _, kind := range []string{".download-", ".tmp-", ".old-"} {
			if strings.HasPrefix(n, "."+name+kind) {
				if err := os.RemoveAll(filepath.Join(parent, n)); err != nil {
					return removed, err
				}
				removed = append(removed, n)
			}
		}
	}
	slices.Sort(removed)
	return removed, nil
}
