//go:build xla

package backend

import (
	"github.com/gomlx/go-xla/compute/xla"
)

// With the "xla" build tag the XLA backend is compiled in (it needs cgo), with
// GoMLX's automatic plugin download switched off: plugins come from
// $GOMLX_BACKEND=xla:/abs/path/plugin.so or $PJRT_PLUGIN_LIBRARY_PATH.
func init() {
	xla.EnableAutoInstall(false)
	xlaCompiled = true
}
