package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// makeTarball writes an npm-style tarball (files under "package/") and returns its path and
// SRI integrity.
func makeTarball(t *testing.T, files map[string]string, extra ...*tar.Header) (string, string) {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range extra {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "pkg-1.0.0.tgz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum512(buf.Bytes())
	return p, "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

var testFiles = map[string]string{
	"package.json": `{"name":"pkg","version":"1.0.0"}`,
	"data/a.json":  `[1,2,3]`,
	"img/64/x.png": "png64",
	"img/16/x.png": "png16",
	"README.md":    "hello",
}

func TestUnpackVerifiesExtractsAndStamps(t *testing.T) {
	tgz, sri := makeTarball(t, testFiles)
	dest := filepath.Join(t.TempDir(), "pkg")
	p := Package{Name: "pkg", Version: "1.0.0", Integrity: sri}
	if err := p.Unpack(tgz, dest); err != nil {
		t.Fatal(err)
	}
	for name, body := range testFiles {
		b, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
		if err != nil || string(b) != body {
			t.Errorf("%s: got %q, %v; want %q", name, b, err, body)
		}
	}
	if !p.Installed(dest) {
		t.Error("Installed() = false after Unpack")
	}
	// A second call is a no-op: a planted change survives, and no download is attempted
	// (Fetch would need npm; with the stamp present it returns before looking for it).
	marker := filepath.Join(dest, "README.md")
	if err := os.WriteFile(marker, []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", "")
	if err := p.Fetch(dest); err != nil {
		t.Fatalf("second Fetch: %v", err)
	}
	if b, _ := os.ReadFile(marker); string(b) != "changed" {
		t.Error("second Fetch re-extracted the package instead of being a no-op")
	}
	// No temporaries left next to dest.
	entries, _ := os.ReadDir(filepath.Dir(dest))
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") || strings.Contains(e.Name(), ".old-") {
			t.Errorf("leftover %s", e.Name())
		}
	}
}

func TestUnpackRejectsCorruptTarball(t *testing.T) {
	tgz, sri := makeTarball(t, testFiles)
	b, _ := os.ReadFile(tgz)
	b[len(b)/2] ^= 0xff // planted corruption
	if err := os.WriteFile(tgz, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "pkg")
	err := Package{Name: "pkg", Version: "1.0.0", Integrity: sri}.Unpack(tgz, dest)
	if err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("corrupt tarball: got %v, want a corruption error", err)
	}
	if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
		t.Errorf("dest exists after a rejected tarball: %v", serr)
	}
}

func TestUnpackRejectsTruncatedTarball(t *testing.T) {
	tgz, _ := makeTarball(t, testFiles)
	b, _ := os.ReadFile(tgz)
	short := filepath.Join(t.TempDir(), "short.tgz")
	if err := os.WriteFile(short, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "pkg")
	// The pinned integrity of the full file: a partial download fails verification.
	_, full := makeTarball(t, testFiles)
	if err := (Package{Name: "pkg", Version: "1.0.0", Integrity: full}).Unpack(short, dest); err == nil {
		t.Fatal("partial download accepted")
	}
	// Even with the matching hash (a truncated file published as such), extraction fails cleanly.
	sum := sha512Of(b[:len(b)/2])
	if err := (Package{Name: "pkg", Version: "1.0.0", Integrity: sum}).Unpack(short, dest); err == nil {
		t.Fatal("truncated tarball extracted without error")
	}
	if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
		t.Errorf("dest exists after a failed extraction: %v", serr)
	}
}

func sha512Of(b []byte) string {
	s := sha512.Sum512(b)
	return "sha512-" + base64.StdEncoding.EncodeToString(s[:])
}

func TestUnpackKeepSelection(t *testing.T) {
	tgz, sri := makeTarball(t, testFiles)
	dest := filepath.Join(t.TempDir(), "pkg")
	p := Package{Name: "pkg", Version: "1.0.0", Integrity: sri,
		Keep:      func(p string) bool { return p == "data/a.json" || strings.HasPrefix(p, "img/64/") },
		Selection: "data+64px"}
	if err := p.Unpack(tgz, dest); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data/a.json", "img/64/x.png"} {
		if _, err := os.Stat(filepath.Join(dest, name)); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
	for _, name := range []string{"img/16/x.png", "README.md", "img/16"} {
		if _, err := os.Stat(filepath.Join(dest, name)); err == nil {
			t.Errorf("%s extracted but not selected", name)
		}
	}
	// Another selection (or another pin) is not mistaken for this install, and replaces it.
	all := Package{Name: "pkg", Version: "1.0.0", Integrity: sri}
	if all.Installed(dest) {
		t.Error("an install with a different selection counts as installed")
	}
	if err := all.Unpack(tgz, dest); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dest, "img/16/x.png")); err != nil {
		t.Errorf("re-install with all files: %v", err)
	}
}

func TestFailedReinstallKeepsOldCopy(t *testing.T) {
	tgz, sri := makeTarball(t, testFiles)
	dest := filepath.Join(t.TempDir(), "pkg")
	if err := (Package{Name: "pkg", Version: "1.0.0", Integrity: sri}).Unpack(tgz, dest); err != nil {
		t.Fatal(err)
	}
	_, otherSRI := makeTarball(t, map[string]string{"x": "y"})
	if err := (Package{Name: "pkg", Version: "2.0.0", Integrity: otherSRI}).Unpack(tgz, dest); err == nil {
		t.Fatal("mismatching tarball accepted")
	}
	if b, err := os.ReadFile(filepath.Join(dest, "README.md")); err != nil || string(b) != "hello" {
		t.Errorf("old install damaged by a failed re-install: %q %v", b, err)
	}
}

func TestUnpackRejectsUnsafePaths(t *testing.T) {
	tgz, sri := makeTarball(t, nil, &tar.Header{Name: "package/../../evil", Mode: 0o644, Typeflag: tar.TypeReg})
	dest := filepath.Join(t.TempDir(), "pkg")
	err := Package{Name: "pkg", Version: "1.0.0", Integrity: sri}.Unpack(tgz, dest)
	if err == nil || !strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("got %v, want unsafe path error", err)
	}
}

func TestConcurrentUnpack(t *testing.T) {
	tgz, sri := makeTarball(t, testFiles)
	dest := filepath.Join(t.TempDir(), "pkg")
	p := Package{Name: "pkg", Version: "1.0.0", Integrity: sri}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = p.Unpack(tgz, dest) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if !p.Installed(dest) {
		t.Error("not installed after concurrent unpacks")
	}
}

func TestIntegrityParsing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("abc"), 0o644)
	// sha1 of "abc" plus the sha512: the strongest is checked.
	good := "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0= " + sha512Of([]byte("abc"))
	if err := VerifyIntegrity(p, good); err != nil {
		t.Errorf("valid multi-hash integrity rejected: %v", err)
	}
	if err := VerifyIntegrity(p, "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0= "+sha512Of([]byte("abd"))); err == nil {
		t.Error("strongest hash mismatch accepted")
	}
	for _, bad := range []string{"", "md5-abc", "sha512-!!!"} {
		if err := VerifyIntegrity(p, bad); err == nil {
			t.Errorf("integrity %q accepted", bad)
		}
	}
	if err := VerifySHA256(p, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"); err != nil {
		t.Error(err)
	}
	if err := VerifySHA256(p, strings.Repeat("0", 64)); err == nil {
		t.Error("wrong sha256 accepted")
	}
}

func TestFetchWithoutNPMSaysSo(t *testing.T) {
	t.Setenv("PATH", "")
	err := NPM("pkg", "1.0.0", sha512Of(nil), filepath.Join(t.TempDir(), "pkg"))
	if err == nil || !strings.Contains(err.Error(), "npm command is not installed") {
		t.Fatalf("got %v", err)
	}
}
