//go:build !unix

package fetch

// lock is a no-op where flock is unavailable: concurrent installs of one destination are then
// not serialized, but the atomic rename still keeps a destination complete.
func lock(string) (func(), error) { return func() {}, nil }
