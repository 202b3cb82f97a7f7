package flock

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestTryLock checks that a held lock is refused to a second holder (flock locks belong to
// the open file, so two opens in one process contend like two processes) and free again after
// unlock.
func TestTryLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := Lock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := TryLock(path); !errors.Is(err, ErrBusy) {
		t.Fatalf("TryLock on a held lock: got %v, want ErrBusy", err)
	}
	unlock()
	unlock2, err := TryLock(path)
	if err != nil {
		t.Fatalf("TryLock after unlock: %v", err)
	}
	unlock2()
}
