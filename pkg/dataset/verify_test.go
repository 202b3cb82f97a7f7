package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// withFakeSet registers, for one test, a set "fake" whose install writes files, counting
// installs, in a fresh data directory.
func withFakeSet(t *testing.T, files map[string]string) (installs *int) {
	t.Helper()
	t.Setenv(labdir.EnvData, t.TempDir())
	n := 0
	const stamp = "fake v1\n"
	fake := Set{Name: "fake", stamp: stamp, install: func(dir string) error {
		n++
		return fetch.InstallDir(dir, stamp, func(tmp string) error {
			for p, b := range files {
				full := filepath.Join(tmp, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(full, []byte(b), 0o644); err != nil {
					return err
				}
			}
			return nil
		})
	}}
	saved := sets
	sets = append(append([]Set{}, sets...), fake)
	t.Cleanup(func() { sets = saved })
	return &n
}

func install(t *testing.T, full bool) string {
	t.Helper()
	var log strings.Builder
	var err error
	if full {
		err = VerifyLog(&log, "fake")
	} else {
		err = InstallLog(&log, "fake")
	}
	if err != nil {
		t.Fatalf("install: %v\n%s", err, log.String())
	}
	return log.String()
}

// flip changes one byte of a file without changing its size, optionally keeping its time, as
// an edit that still parses would (a flipped label).
func flip(t *testing.T, path string, keepTime bool) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	b[len(b)-1] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if keepTime {
		if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	} else {
		later := st.ModTime().Add(time.Second)
		_ = os.Chtimes(path, later, later)
	}
}

// A stamp is not trusted alone: a file changed after its install makes the set damaged for
// loaders and State, and Install reinstalls it; -verify finds even a change that kept the
// file's size and time.
func TestDamagedSetIsDetectedAndRepaired(t *testing.T) {
	installs := withFakeSet(t, map[string]string{"labels.txt": "label 0\n", "img/a.png": "png"})
	install(t, false)
	if *installs != 1 || State("fake") != "installed" {
		t.Fatalf("after install: %d installs, state %s", *installs, State("fake"))
	}
	if out := install(t, false); *installs != 1 || !strings.Contains(out, "installed") {
		t.Errorf("a second install reinstalled (%d installs): %s", *installs, out)
	}
	labels := filepath.Join(Dir("fake"), "labels.txt")

	flip(t, labels, false)
	if _, err := open("fake"); err == nil || !strings.Contains(err.Error(), "labels.txt changed after it was installed") ||
		!strings.Contains(err.Error(), InstallCommand) {
		t.Errorf("open of a changed set: %v, want it reported damaged with the repair command", err)
	}
	if State("fake") != "damaged" || Installed("fake") {
		t.Errorf("changed set: state %s, installed %v", State("fake"), Installed("fake"))
	}
	if out := install(t, false); *installs != 2 || !strings.Contains(out, "DAMAGED") {
		t.Errorf("install of a damaged set: %d installs, log %q", *installs, out)
	}
	if b, _ := os.ReadFile(labels); string(b) != "label 0\n" || State("fake") != "installed" {
		t.Errorf("after repair: %q, state %s", b, State("fake"))
	}

	if err := os.Remove(filepath.Join(Dir("fake"), "img", "a.png")); err != nil {
		t.Fatal(err)
	}
	if _, err := open("fake"); err == nil || !strings.Contains(err.Error(), "img/a.png is missing") {
		t.Errorf("open with a file missing: %v", err)
	}
	install(t, false)
	if *installs != 3 || State("fake") != "installed" {
		t.Errorf("missing file not repaired: %d installs, state %s", *installs, State("fake"))
	}

	// Same size, same time: only hashing every byte finds it.
	flip(t, labels, true)
	if err := Verify("fake"); err == nil || !strings.Contains(err.Error(), "labels.txt") {
		t.Errorf("Verify of a set changed in place: %v", err)
	}
	if out := install(t, true); *installs != 4 || !strings.Contains(out, "DAMAGED") {
		t.Errorf("verify did not repair: %d installs, %q", *installs, out)
	}
	if err := Verify("fake"); err != nil {
		t.Errorf("after verify: %v", err)
	}
	if out := install(t, true); *installs != 4 || !strings.Contains(out, "verified") {
		t.Errorf("verify of an intact set: %d installs, %q", *installs, out)
	}
}

// What killed installs leave beside the set (npm downloads, unfinished and replaced copies)
// is removed by the next install; other sets' entries are not touched.
func TestKilledInstallLeftoversRemoved(t *testing.T) {
	withFakeSet(t, map[string]string{"a": "1"})
	parent := filepath.Dir(Dir("fake"))
	left := []string{".fake.download-123", ".fake.tmp-456", ".fake.old-.fake.tmp-789"}
	keep := []string{".mnist.download-1", "fakeish", ".fake.install.lock.d"}
	for _, d := range append(left, keep...) {
		if err := os.MkdirAll(filepath.Join(parent, d), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(parent, d, "big.tgz"), []byte("x"), 0o644)
	}
	out := install(t, false)
	for _, d := range left {
		if _, err := os.Stat(filepath.Join(parent, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("leftover %s not removed", d)
		}
	}
	for _, d := range keep {
		if _, err := os.Stat(filepath.Join(parent, d)); err != nil {
			t.Errorf("%s removed: %v", d, err)
		}
	}
	if !strings.Contains(out, "removed what interrupted installs left") {
		t.Errorf("log does not say what was removed: %q", out)
	}
}

// A real loader refuses a file changed after install even when the change parses: here an
// MNIST label file replaced by a valid one with another label.
func TestLoaderRefusesChangedFile(t *testing.T) {
	t.Setenv(labdir.EnvData, t.TempDir())
	plant(t, "mnist", map[string][]byte{
		"t10k-images-idx3-ubyte.gz": gzipped(idxBytes([]int{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7})),
		"t10k-labels-idx1-ubyte.gz": gzipped(idxBytes([]int{2}, []byte{7, 3})),
	})
	if err := writeManifest(Dir("mnist")); err != nil {
		t.Fatal(err)
	}
	if _, err := MNIST(Test); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(Dir("mnist"), "t10k-labels-idx1-ubyte.gz")
	st, _ := os.Stat(path)
	if err := os.WriteFile(path, gzipped(idxBytes([]int{2}, []byte{7, 4})), 0o644); err != nil {
		t.Fatal(err)
	}
	later := st.ModTime().Add(time.Second)
	_ = os.Chtimes(path, later, later)
	if _, err := MNIST(Test); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("MNIST with a changed label file: %v, want it refused as damaged", err)
	}
}
