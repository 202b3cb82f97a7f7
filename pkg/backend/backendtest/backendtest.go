// Package backendtest gives every test in a binary one shared backend from
// backend.New, created on first use, so test files don't each keep their own.
package backendtest

import (
	"sync"
	"testing"

	"github.com/gomlx/compute"
	"github.com/peftlab/peftlab/pkg/backend"
)

var (
	once sync.Once
	be   compute.Backend
	err  error
)

// Backend returns the shared backend, failing the test if it cannot be created.
func Backend(t testing.TB) compute.Backend {
	t.Helper()
	once.Do(func() { be, err = backend.New() })
	if err != nil {
		t.Fatalf("backend: %v", err)
	}
	return be
}
