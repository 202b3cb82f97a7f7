package fetch

import (
	"os/exec"
	"testing"
)

func TestDebInstalled(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("not a Debian system")
	}
	if !DebInstalled("dpkg") {
		t.Error(`DebInstalled("dpkg") = false`)
	}
	if DebInstalled("peftlab-no-such-package") {
		t.Error("DebInstalled of a made-up package = true")
	}
	// Already installed: Apt does nothing (and in particular does not run apt-get update).
	if err := Apt("dpkg"); err != nil {
		t.Error(err)
	}
}
