package dataset_test

import (
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/dataset"
	"github.com/peftlab/peftlab/pkg/dataset/datatest"
)

// These tests read the installed data (see datatest.Require) and check the published counts.

func TestRealInstallIsIdempotent(t *testing.T) {
	datatest.Require(t, dataset.Names()...)
	start := time.Now()
	if err := dataset.Install(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Install of installed sets took %v; it should only check stamps", d)
	}
}

func TestRealImages(t *testing.T) {
	datatest.Require(t, "mnist", "fashion-mnist")
	for _, c := range []struct {
		load  func(dataset.Split) (*dataset.Images, error)
		split dataset.Split
		n     int
	}{{dataset.MNIST, dataset.Train, 60000}, {dataset.MNIST, dataset.Test, 10000},
		{dataset.FashionMNIST, dataset.Train, 60000}, {dataset.FashionMNIST, dataset.Test, 10000}} {
		im, err := c.load(c.split)
		if err != nil {
			t.Fatal(err)
		}
		if im.N != c.n || im.Height != 28 || im.Width != 28 || len(im.Pixels) != c.n*784 {
			t.Fatalf("%s: N=%d %dx%d", c.split, im.N, im.Height, im.Width)
		}
		counts := make([]int, 10)
		for _, l := range im.Labels {
			counts[l]++
		}
		for k, n := range counts {
			if n < c.n/20 {
				t.Errorf("%v class %d has only %d images", im.Classes, k, n)
			}
		}
	}
	m, _ := dataset.MNIST(dataset.Train)
	if got := m.Labels[:5]; got[0] != 5 || got[1] != 0 || got[2] != 4 || got[3] != 1 || got[4] != 9 {
		t.Errorf("first MNIST labels %v, want the well-known 5 0 4 1 9", got)
	}
}

func TestRealText(t *testing.T) {
	datatest.Require(t, "imdb", "spam", "fortunes")
	reviews, err := dataset.IMDB()
	if err != nil {
		t.Fatal(err)
	}
	pos := 0
	for _, r := range reviews {
		if r.Positive {
			pos++
		}
	}
	if len(reviews) != 50000 || pos != 25000 {
		t.Errorf("IMDB: %d reviews, %d positive; want 50000, 25000", len(reviews), pos)
	}
	mails, err := dataset.SpamAssassin()
	if err != nil {
		t.Fatal(err)
	}
	spam := 0
	for _, m := range mails {
		if m.Spam {
			spam++
		}
	}
	if len(mails) != 6046 || spam != 1896 {
		t.Errorf("spam: %d mails, %d spam; want 6046, 1896", len(mails), spam)
	}
	quotes, err := dataset.Fortunes()
	if err != nil {
		t.Fatal(err)
	}
	cats := map[string]int{}
	for _, q := range quotes {
		cats[q.Category]++
	}
	if len(quotes) < 15000 || len(cats) != 43 {
		t.Errorf("fortunes: %d quotes in %d categories", len(quotes), len(cats))
	}
}

func TestRealEmoji(t *testing.T) {
	datatest.Require(t, "emoji")
	es, err := dataset.Emojis()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1911 {
		t.Errorf("%d emoji, want 1911", len(es))
	}
	if es[0].Caption() != "grinning face" || es[0].Category != "Smileys & Emotion" {
		t.Errorf("first emoji %+v", es[0])
	}
	img, err := es[0].Image()
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 64 || b.Dy() != 64 {
		t.Errorf("image %v, want 64x64", b)
	}
	// A face: opaque in the middle, transparent in the corner.
	if a := img.NRGBAAt(32, 32).A; a != 255 {
		t.Errorf("centre alpha %d", a)
	}
	if a := img.NRGBAAt(0, 0).A; a != 0 {
		t.Errorf("corner alpha %d", a)
	}
}
