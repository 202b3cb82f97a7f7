package fetch

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// Apt makes sure the Debian packages are installed: those that dpkg reports missing are
// installed with apt-get (after one `apt-get update` per process), through `sudo -n` when not
// running as root. When that is impossible (no apt-get, no root and no password-less sudo) the
// error says which command to run by hand.
func Apt(pkgs ...string) error {
	var missing []string
	for _, p := range pkgs {
		if !DebInstalled(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	byHand := "sudo apt-get install -y --no-install-recommends " + strings.Join(missing, " ")
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("Debian packages %s are needed but apt-get is not available here; install them with the system's package manager (on Debian/Ubuntu: %s)",
			strings.Join(missing, ", "), byHand)
	}
	var prefix []string
	if os.Geteuid() != 0 {
		if _, err := exec.LookPath("sudo"); err != nil {
			return fmt.Errorf("Debian packages %s are needed; not running as root and sudo is missing: run as root: %s",
				strings.Join(missing, ", "), byHand)
		}
		prefix = []string{"sudo", "-n"}
	}
	aptUpdate.Do(func() { aptUpdateErr = runApt(prefix, "update") })
	if aptUpdateErr != nil {
		return fmt.Errorf("apt-get update failed (%v); install by hand: %s", aptUpdateErr, byHand)
	}
	args := append([]string{"install", "-y", "--no-install-recommends"}, missing...)
	if err := runApt(prefix, args...); err != nil {
		return fmt.Errorf("installing Debian packages %s failed: %w\nto install by hand: %s", strings.Join(missing, ", "), err, byHand)
	}
	for _, p := range missing {
		if !DebInstalled(p) {
			return fmt.Errorf("apt-get ran but Debian package %s is still not installed; install by hand: %s", p, byHand)
		}
	}
	return nil
}

var (
	aptUpdate    sync.Once
	aptUpdateErr error
)

// DebInstalled reports whether dpkg knows the Debian package as installed.
func DebInstalled(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

func runApt(prefix []string, args ...string) error {
	argv := append(append([]string{}, prefix...), "apt-get")
	argv = append(argv, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail(out.String(), 2000))
	}
	return nil
}
