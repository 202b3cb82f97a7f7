package dataset

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// loaders calls every loader once.
var loaders = map[string]func() error{
	"mnist":         func() error { _, err := MNIST(Train); return err },
	"fashion-mnist": func() error { _, err := FashionMNIST(Test); return err },
	"imdb":          func() error { _, err := IMDB(); return err },
	"emoji":         func() error { _, err := Emojis(); return err },
	"spam":          func() error { _, err := SpamAssassin(); return err },
	"fortunes":      func() error { _, err := Fortunes(); return err },
}

func TestEverySetHasALoader(t *testing.T) {
	for _, n := range Names() {
		if loaders[n] == nil {
			t.Errorf("no loader test for %s", n)
		}
	}
}

func TestMissingDataSaysHowToInstall(t *testing.T) {
	t.Setenv(labdir.EnvData, t.TempDir())
	for name, load := range loaders {
		err := load()
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "run: go run ./kernel data") {
			t.Errorf("%s with no data: got %v", name, err)
		}
	}
}

// plant makes a fake "installed" set: the right stamp, with the given files.
func plant(t *testing.T, name string, files map[string][]byte) {
	t.Helper()
	s, err := lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := fetch.InstallDir(Dir(name), s.stamp, func(tmp string) error {
		for p, b := range files {
			full := filepath.Join(tmp, filepath.FromSlash(p))
			os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, b, 0o644); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedDataIsReported(t *testing.T) {
	t.Setenv(labdir.EnvData, t.TempDir())
	images := gzipped(idxBytes([]int{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7}))
	plant(t, "mnist", map[string][]byte{
		"train-images-idx3-ubyte.gz": images[:len(images)-4], // partial file
		"train-labels-idx1-ubyte.gz": gzipped(idxBytes([]int{2}, []byte{1, 2})),
	})
	plant(t, "fashion-mnist", map[string][]byte{
		"t10k-images-idx3-ubyte.gz": images,
		"t10k-labels-idx1-ubyte.gz": gzipped(idxBytes([]int{2}, []byte{1, 12})), // label 12 is no class
	})
	plant(t, "imdb", map[string][]byte{"reviews.json": []byte(`[{"t": "fine", "s": 1}, {"t": "x", "s": 7}]`)})
	plant(t, "emoji", map[string][]byte{"emoji.json": []byte(`[{"name":"A","image":"1f600.png","category":"Flags","has_img_google":true}]`)})
	plant(t, "spam", map[string][]byte{"data/file_list.json": []byte(`["spam-1/00001.x.txt"]`), "data/spam-1/00001.x.json": []byte(`{"id":`)})
	plant(t, "fortunes", map[string][]byte{"art": []byte("only one file")})
	for name, load := range loaders {
		err := load()
		if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), name) {
			t.Errorf("%s damaged: got %v", name, err)
		}
	}
}

func TestPlantedSmallSets(t *testing.T) {
	t.Setenv(labdir.EnvData, t.TempDir())
	plant(t, "mnist", map[string][]byte{
		"t10k-images-idx3-ubyte.gz": gzipped(idxBytes([]int{2, 2, 2}, []byte{0, 1, 2, 3, 4, 5, 6, 7})),
		"t10k-labels-idx1-ubyte.gz": gzipped(idxBytes([]int{2}, []byte{7, 3})),
	})
	im, err := MNIST(Test)
	if err != nil {
		t.Fatal(err)
	}
	if im.N != 2 || im.Height != 2 || im.Width != 2 || im.Image(1)[3] != 7 || im.Classes[im.Labels[0]] != "seven" {
		t.Errorf("got %+v", im)
	}
	if _, err := MNIST("validation"); err == nil {
		t.Error("unknown split accepted")
	}
	plant(t, "imdb", map[string][]byte{"reviews.json": []byte(`[{"t": "great<br />film", "s": 1}, {"t": "bad", "s": 0}]`)})
	r, err := IMDB()
	if err != nil || len(r) != 2 || !r[0].Positive || r[1].Positive || r[1].Text != "bad" {
		t.Errorf("IMDB() = %+v, %v", r, err)
	}
}

func TestUnknownSet(t *testing.T) {
	if err := Install("cifar"); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Errorf("Install(cifar) = %v", err)
	}
}
