// Package version says which software ran, as one Stamp: the Go toolchain, GoMLX and peftlab
// (with the VCS revision, when the binary knows it). Run records (trainer.Record.Versions)
// and adapter files (peftlab_version) take their versions from Current, so the two always
// agree.
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Module is peftlab's module path.
const Module = "github.com/peftlab/peftlab"

// GoMLXPinned is the GoMLX version go.mod requires (a test keeps them in step). Test binaries
// carry no dependency versions, so Current falls back to it.
const GoMLXPinned = "v0.28.2"

// Devel is the peftlab version of a binary built from a checkout rather than from a released
// module version: a work tree, a test, or a notebook cell whose module replaces peftlab with
// the checkout beside it.
const Devel = "devel"

// Stamp is the versions of the software that ran. Its JSON is the "versions" object of
// run.json.
type Stamp struct {
	Go      string `json:"go"`
	GoMLX   string `json:"gomlx"`
	Peftlab string `json:"peftlab"`
	// Revision is the VCS revision peftlab was built from, when known ("+dirty" when the tree
	// had local changes).
	Revision string `json:"revision,omitempty"`
}

// Current returns the versions linked into this binary. Peftlab is the module version, or
// Devel when built from a checkout; GoMLX is the linked version, or GoMLXPinned when the
// binary does not record it.
func Current() Stamp { return current() }

var current = sync.OnceValue(func() Stamp {
	s := Stamp{Go: runtime.Version(), GoMLX: GoMLXPinned, Peftlab: Devel}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return s
	}
	if info.Main.Path == Module && released(info.Main.Version) {
		s.Peftlab = info.Main.Version
	}
	for _, d := range info.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version // "" when replaced by a directory: a checkout
		}
		switch d.Path {
		case Module:
			if released(v) {
				s.Peftlab = v
			}
		case "github.com/gomlx/gomlx":
			if v != "" {
				s.GoMLX = v
			}
		}
	}
	dirty := false
	for _, kv := range info.Settings {
		switch kv.Key {
		case "vcs.revision":
			s.Revision = kv.Value
		case "vcs.modified":
			dirty = kv.Value == "true"
		}
	}
	if dirty && s.Revision != "" {
		s.Revision += "+dirty"
	}
	return s
})

// released reports whether v names a module version, not a build from a checkout: "(devel)"
// is the main module's work tree, and the zero pseudo-version is what a notebook cell's
// module requires before replacing peftlab with the checkout.
func released(v string) bool {
	return v != "" && v != "(devel)" && v != "v0.0.0-00010101000000-000000000000"
}
