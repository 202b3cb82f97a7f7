package mode

import "testing"

func TestFast(t *testing.T) {
	for v, want := range map[string]bool{
		"1": true, "true": true, "TRUE": true, "yes": true, " yes\n": true,
		"": false, "0": false, "false": false, "no": false, "fast": false,
	} {
		t.Setenv(EnvFast, v)
		if got := Fast(); got != want {
			t.Errorf("%s=%q: Fast() = %v, want %v", EnvFast, v, got, want)
		}
	}
}
