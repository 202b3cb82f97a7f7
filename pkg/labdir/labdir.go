// Package labdir says where peftlab keeps what it downloads and produces, so that every
// package, command and notebook finds the same files.
//
//	Dir()    = $PEFTLAB_HOME, else os.UserCacheDir()/peftlab (else the temp dir /peftlab)
//	Data()   = $PEFTLAB_DATA, else Dir()/data     (installed data sets, see pkg/dataset)
//	Assets() = $PEFTLAB_ASSETS, else Dir()/assets (checkpoints and other produced files)
//
// The directories are created on demand: each function makes its directory if it is missing. A
// creation failure is not reported here (the functions are used in expressions); it surfaces as
// a clear error at the first write or read under the directory.
package labdir

import (
	"os"
	"path/filepath"
)

// Environment variables that override the default locations.
const (
	EnvHome   = "PEFTLAB_HOME"
	EnvData   = "PEFTLAB_DATA"
	EnvAssets = "PEFTLAB_ASSETS"
)

// Dir is peftlab's root directory: $PEFTLAB_HOME or the user's cache directory /peftlab.
func Dir() string {
	return ensure(home())
}

// Data is where data sets are installed: $PEFTLAB_DATA or Dir()/data.
func Data() string {
	if d := os.Getenv(EnvData); d != "" {
		return ensure(abs(d))
	}
	return ensure(filepath.Join(home(), "data"))
}

// Assets is where produced files (checkpoints, tokenizers, reports) live: $PEFTLAB_ASSETS or
// Dir()/assets.
func Assets() string {
	if d := os.Getenv(EnvAssets); d != "" {
		return ensure(abs(d))
	}
	return ensure(filepath.Join(home(), "assets"))
}

func home() string {
	if d := os.Getenv(EnvHome); d != "" {
		return abs(d)
	}
	if c, err := os.UserCacheDir(); err == nil {
		return filepath.Join(c, "peftlab")
	}
	// No $HOME nor $XDG_CACHE_HOME (e.g. a bare CI container): still give a usable place.
	return filepath.Join(os.TempDir(), "peftlab")
}

// abs makes a relative override absolute, so that a later os.Chdir (GoNB runs cells in the
// notebook's directory) does not move the data.
func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func ensure(d string) string {
	_ = os.MkdirAll(d, 0o755)
	return d
}
