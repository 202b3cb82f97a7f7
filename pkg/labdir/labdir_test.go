package labdir

import (
	"os"
	"path/filepath"
	"testing"
)

func TestOverrides(t *testing.T) {
	root := t.TempDir()
	t.Setenv(EnvHome, filepath.Join(root, "home"))
	t.Setenv(EnvData, "")
	t.Setenv(EnvAssets, "")
	if got, want := Dir(), filepath.Join(root, "home"); got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
	if got, want := Data(), filepath.Join(root, "home", "data"); got != want {
		t.Errorf("Data() = %q, want %q", got, want)
	}
	if got, want := Assets(), filepath.Join(root, "home", "assets"); got != want {
		t.Errorf("Assets() = %q, want %q", got, want)
	}
	for _, d := range []string{Dir(), Data(), Assets()} {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			t.Errorf("%s was not created: %v", d, err)
		}
	}
	t.Setenv(EnvData, filepath.Join(root, "elsewhere"))
	if got, want := Data(), filepath.Join(root, "elsewhere"); got != want {
		t.Errorf("Data() with %s = %q, want %q", EnvData, got, want)
	}
}

func TestRelativeOverrideIsAbsolute(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv(EnvHome, "rel")
	if d := Dir(); !filepath.IsAbs(d) {
		t.Errorf("Dir() = %q, want an absolute path", d)
	}
}

func TestDefaultUnderUserCache(t *testing.T) {
	t.Setenv(EnvHome, "")
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	if got, want := Dir(), filepath.Join(cache, "peftlab"); got != want {
		t.Errorf("Dir() = %q, want %q", got, want)
	}
}
