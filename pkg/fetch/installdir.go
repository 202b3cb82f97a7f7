package fetch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// StampFile is the name of the file, inside an installed directory, that records what was
// installed there (the pin and checksum). Its presence with the expected content is what makes
// a second install a no-op.
const StampFile = ".peftlab-stamp"

// Stamped reports whether dest holds a complete install recorded with exactly this stamp.
func Stamped(dest, stamp string) bool {
	b, err := os.ReadFile(filepath.Join(dest, StampFile))
	return err == nil && string(b) == stamp
}

// InstallDir makes dest atomically: fill is called on a fresh temporary directory next to dest
// (same file system), stamp is written into it, and it is renamed into place, replacing an older
// dest. If dest already holds this stamp nothing is done. If fill fails, nothing is left behind
// and an existing dest is untouched. Concurrent calls for one dest are serialized with a lock
// file beside it.
func InstallDir(dest, stamp string, fill func(tmp string) error) error {
	dest = filepath.Clean(dest)
	if Stamped(dest, stamp) {
		return nil
	}
	parent, base := filepath.Dir(dest), filepath.Base(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	unlock, err := lock(filepath.Join(parent, "."+base+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if Stamped(dest, stamp) { // another process finished it while we waited for the lock
		return nil
	}
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	defer os.RemoveAll(tmp) // a no-op after a successful rename
	if err := fill(tmp); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(tmp, StampFile), []byte(stamp)); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	// Replace an older install: move it aside first, since rename cannot replace a directory.
	var old string
	if _, err := os.Lstat(dest); err == nil {
		old = filepath.Join(parent, "."+base+".old-"+filepath.Base(tmp))
		if err := os.Rename(dest, old); err != nil {
			return fmt.Errorf("install %s: move old copy aside: %w", dest, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		if old != "" {
			_ = os.Rename(old, dest)
		}
		return fmt.Errorf("install %s: %w", dest, err)
	}
	if old != "" {
		_ = os.RemoveAll(old)
	}
	return nil
}

// Lock takes an exclusive advisory lock on path (created if missing) and returns the function
// that releases it: for callers that serialize more than InstallDir does (a download, the
// removal of what killed installs left) across processes. Use another path than InstallDir's
// own lock (".<dest>.lock"): the lock is not reentrant.
func Lock(path string) (unlock func(), err error) { return lock(path) }

// writeFileAtomic writes data to a temporary file next to path and renames it into place.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// CopyFile copies src to dst (dst's directory must exist), for installers that gather files
// from elsewhere (the Go module cache, a Debian package) into an InstallDir.
func CopyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := out.ReadFrom(in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
