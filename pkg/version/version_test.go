package version

import (
	"encoding/json"
	"os"
	"runtime"
	"strings"
	"testing"
)

func TestGoMLXPinnedMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mod), "github.com/gomlx/gomlx "+GoMLXPinned+"\n") {
		t.Errorf("go.mod does not require github.com/gomlx/gomlx %s: update GoMLXPinned", GoMLXPinned)
	}
}

// A test binary is built from the checkout: peftlab is Devel, GoMLX the pinned version.
func TestCurrent(t *testing.T) {
	s := Current()
	if s.Go != runtime.Version() || s.GoMLX != GoMLXPinned || s.Peftlab != Devel {
		t.Errorf("Current() = %+v, want Go %s, GoMLX %s, peftlab %s", s, runtime.Version(), GoMLXPinned, Devel)
	}
}

// The JSON is run.json's "versions" object as trainer.Versions wrote it.
func TestStampJSON(t *testing.T) {
	raw := `{"go":"go1.26.5","gomlx":"v0.28.2","peftlab":"(devel)","revision":"abc+dirty"}`
	var s Stamp
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(s)
	if err != nil || string(out) != raw {
		t.Errorf("round trip: %s (%v), want %s", out, err, raw)
	}
	if out, _ := json.Marshal(Stamp{Go: "go1.26.5"}); strings.Contains(string(out), "revision") {
		t.Errorf("an unknown revision is written: %s", out)
	}
}

func TestReleased(t *testing.T) {
	for v, want := range map[string]bool{"v0.1.0": true, "v0.0.0-20250101000000-abcdef123456": true,
		"": false, "(devel)": false, "v0.0.0-00010101000000-000000000000": false} {
		if released(v) != want {
			t.Errorf("released(%q) = %v, want %v", v, !want, want)
		}
	}
}
