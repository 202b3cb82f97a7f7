// Package mode says whether peftlab runs its quick version.
//
// PEFTLAB_FAST=1: every notebook and grid takes its small, quick version (a few steps on the
// fast subsets of the tasks), a smoke test of the whole path whose numbers mean nothing.
// `go run ./kernel exec` sets it unless -full; the lab leaves it unset. Read it through Fast,
// so that every part of peftlab agrees on what counts as set.
package mode

import (
	"os"
	"strings"
)

// EnvFast is the environment variable that selects the quick version.
const EnvFast = "PEFTLAB_FAST"

// Fast reports whether EnvFast asks for the quick version: "1", "true" or "yes", in any case.
// Anything else, or unset, is the full version.
func Fast() bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(EnvFast))) {
	case "1", "true", "yes":
		return true
	}
	return false
}
