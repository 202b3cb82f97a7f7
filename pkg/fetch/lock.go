package fetch

import "github.com/peftlab/peftlab/pkg/internal/flock"

// lock takes an exclusive advisory lock on path (created if missing), so that two processes
// installing the same destination (e.g. tests of two packages run in parallel by go test)
// do not race; the second waits and then finds the stamp.
func lock(path string) (unlock func(), err error) { return flock.Lock(path) }
