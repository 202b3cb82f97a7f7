package fetch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// DebRoot gives a file-system root under which the files of a Debian package can be read:
// "/" when the package is installed (installing it with Apt if needed), otherwise a temporary
// directory where `apt-get download` + `dpkg-deb -x` unpacked it, which needs no root when the
// apt lists are present. Call cleanup when done. Whoever reads the files must verify them
// (e.g. with VerifySHA256): the package version is not pinned, its files are.
func DebRoot(pkg string) (root string, cleanup func(), err error) {
	noop := func() {}
	aptErr := Apt(pkg)
	if aptErr == nil {
		return "/", noop, nil
	}
	tmp, err := os.MkdirTemp("", "peftlab-deb-")
	if err != nil {
		return "", noop, aptErr
	}
	cleanup = func() { os.RemoveAll(tmp) }
	run := func(dir string, argv ...string) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%v: %w\n%s", argv, err, tail(out.String(), 1000))
		}
		return nil
	}
	if err := run(tmp, "apt-get", "download", pkg); err != nil {
		cleanup()
		return "", noop, fmt.Errorf("%w\n(and downloading it without installing failed too: %v)", aptErr, err)
	}
	debs, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(debs) != 1 {
		cleanup()
		return "", noop, fmt.Errorf("%w\n(apt-get download %s gave %d .deb files)", aptErr, pkg, len(debs))
	}
	root = filepath.Join(tmp, "root")
	if err := run(tmp, "dpkg-deb", "-x", debs[0], root); err != nil {
		cleanup()
		return "", noop, fmt.Errorf("%w\n(and unpacking the downloaded package failed: %v)", aptErr, err)
	}
	return root, cleanup, nil
}
