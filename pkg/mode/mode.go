// Package mode says how peftlab runs: its quick version or in full, and with or without a
// live front end.
//
// PEFTLAB_FAST=1: every notebook and grid takes its small, quick version (a few steps on the
// fast subsets of the tasks), a smoke test of the whole path whose numbers mean nothing.
// `go run ./kernel exec` sets it unless -full; the lab leaves it unset. Read it through Fast,
// so that every part of peftlab agrees on what counts as set.
//
// PEFTLAB_HEADLESS=1: the notebook is executed with no browser showing it (`go run ./kernel
// exec` sets it, `go run ./kernel lab` clears it), so nothing may wait for the page to answer:
// interactive views (lab.Explore) render a static view instead of their controls. Read it
// through Headless.
package mode

import (
	"os"
	"strings"
)

// EnvFast is the environment variable that selects the quick version.
const EnvFast = "PEFTLAB_FAST"

// EnvHeadless is the environment variable that says no live front end shows the notebook.
const EnvHeadless = "PEFTLAB_HEADLESS"

// Fast reports whether EnvFast asks for the quick version: "1", "true" or "yes", in any case.
// Anything else, or unset, is the full version.
func Fast() bool { return set(EnvFast) }

// Headless reports whether EnvHeadless says that no live front end shows the notebook: "1",
// "true" or "yes", in any case. Anything else, or unset, means a page may be there.
func Headless() bool { return set(EnvHeadless) }

// set reports whether the variable holds one of the values that mean yes.
func set(env string) bool {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(env))) {
	case "1", "true", "yes":
		return true
	}
	return false
}
