//go:build unix

package fetch

import (
	"fmt"
	"os"
	"syscall"
)

// lock takes an exclusive advisory lock on path (created if missing), so that two processes
// installing the same destination (e.g. tests of two packages run in parallel by go test)
// do not race; the second waits and then finds the stamp.
func lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
