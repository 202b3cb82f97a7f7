package fetch

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
)

// VerifyIntegrity checks the file at path against a Subresource Integrity string, the format npm
// publishes as dist.integrity ("sha512-<base64>"; several space-separated hashes may be given,
// and the strongest one is checked). It returns an error naming both digests on a mismatch.
func VerifyIntegrity(path, integrity string) error {
	algo, want, err := parseSRI(integrity)
	if err != nil {
		return err
	}
	got, err := hashFile(path, algo)
	if err != nil {
		return err
	}
	if string(got) != string(want) {
		return fmt.Errorf("%s is corrupt or not the pinned file: %s digest %s, want %s",
			path, algo, base64.StdEncoding.EncodeToString(got), base64.StdEncoding.EncodeToString(want))
	}
	return nil
}

// VerifySHA256 checks the file at path against a hex-encoded SHA-256 digest.
func VerifySHA256(path, wantHex string) error {
	got, err := hashFile(path, "sha256")
	if err != nil {
		return err
	}
	if hex.EncodeToString(got) != strings.ToLower(wantHex) {
		return fmt.Errorf("%s is corrupt or not the pinned file: sha256 %x, want %s", path, got, wantHex)
	}
	return nil
}

// SHA256 returns the hex SHA-256 digest of a file, for recording pins.
func SHA256(path string) (string, error) {
	got, err := hashFile(path, "sha256")
	return hex.EncodeToString(got), err
}

var sriRank = map[string]int{"sha1": 1, "sha256": 2, "sha384": 3, "sha512": 4}

func parseSRI(integrity string) (algo string, digest []byte, err error) {
	best := 0
	for _, f := range strings.Fields(integrity) {
		a, b64, ok := strings.Cut(f, "-")
		if !ok || sriRank[a] == 0 {
			continue
		}
		if i := strings.IndexByte(b64, '?'); i >= 0 { // SRI options are allowed after '?'
			b64 = b64[:i]
		}
		d, derr := base64.StdEncoding.DecodeString(b64)
		if derr != nil {
			return "", nil, fmt.Errorf("integrity %q: bad base64 digest: %w", integrity, derr)
		}
		if sriRank[a] > best {
			best, algo, digest = sriRank[a], a, d
		}
	}
	if best == 0 {
		return "", nil, fmt.Errorf("integrity %q: want \"sha512-<base64>\" (as printed by npm view NAME@VERSION dist.integrity)", integrity)
	}
	return algo, digest, nil
}

func hashFile(path, algo string) ([]byte, error) {
	var h hash.Hash
	switch algo {
	case "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	case "sha384":
		h = sha512.New384()
	case "sha512":
		h = sha512.New()
	default:
		return nil, fmt.Errorf("unsupported hash %q", algo)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return h.Sum(nil), nil
}
