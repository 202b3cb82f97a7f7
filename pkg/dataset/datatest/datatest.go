// Package datatest lets tests that read real data sets say so: they fail under CI (where
// `make test` installs the data first, so missing data is a bug) and skip elsewhere with the
// command that installs the data.
package datatest

import (
	"os"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/dataset"
)

// Require stops the test unless the named data sets are installed: t.Fatal when the CI
// environment variable is "true", t.Skip otherwise.
func Require(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, n := range names {
		if !dataset.Installed(n) {
			missing = append(missing, n)
		}
	}
	if len(missing) == 0 {
		return
	}
	msg := "data sets " + strings.Join(missing, ", ") + " not installed in " + dataset.Dir("") +
		": run: " + dataset.InstallCommand + " (or make data)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
