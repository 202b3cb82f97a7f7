package mode

import "testing"

func TestFastAndHeadless(t *testing.T) {
	for _, c := range []struct {
		env string
		get func() bool
	}{{EnvFast, Fast}, {EnvHeadless, Headless}} {
		for v, want := range map[string]bool{
			"1": true, "true": true, "TRUE": true, "yes": true, " yes\n": true,
			"": false, "0": false, "false": false, "no": false, "fast": false,
		} {
			t.Setenv(c.env, v)
			if got := c.get(); got != want {
				t.Errorf("%s=%q: got %v, want %v", c.env, v, got, want)
			}
		}
	}
}
