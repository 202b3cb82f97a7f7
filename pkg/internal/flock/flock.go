// Package flock takes exclusive advisory locks on files, so that processes sharing a directory
// (two notebook kernels on one run store, two test binaries installing one data set) take
// turns. The kernel releases a lock when its process dies, however it dies (SIGKILL
// included): a lock that can be taken means that nobody holding it is still alive, which is
// what tells a crashed run from a running one.
package flock

import "errors"

// ErrBusy is returned by TryLock when another process (or another open file in this
// process) holds the lock.
var ErrBusy = errors.New("locked by another process")

// Lock takes an exclusive lock on path (created if missing), waiting while another holder
// has it. unlock releases it; it is safe to call once.
func Lock(path string) (unlock func(), err error) { return lock(path, true) }

// TryLock takes the lock on path if it is free, and returns ErrBusy (wrapped) if not.
func TryLock(path string) (unlock func(), err error) { return lock(path, false) }
