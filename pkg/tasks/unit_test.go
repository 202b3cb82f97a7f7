package tasks

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/dataset"
	"github.com/peftlab/peftlab/pkg/labdir"
	"github.com/peftlab/peftlab/pkg/mode"
)

func TestResizeAreaAverages(t *testing.T) {
	// 4x4 -> 2x2: each output is the mean of a 2x2 block.
	src := []float32{
		1, 2, 3, 4,
		5, 6, 7, 8,
		9, 10, 11, 12,
		13, 14, 15, 16,
	}
	got := resizeArea(src, 4, 4, 1, 2)
	want := []float32{3.5, 5.5, 11.5, 13.5}
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > 1e-5 {
			t.Fatalf("resizeArea = %v, want %v", got, want)
		}
	}
	// 3 -> 2 with fractional overlaps: [1, 2, 3] -> [(1 + 0.5*2)/1.5, (0.5*2 + 3)/1.5].
	got = resizeArea([]float32{1, 2, 3}, 1, 3, 1, 2)
	if math.Abs(float64(got[0])-2.0/1.5) > 1e-5 || math.Abs(float64(got[1])-4.0/1.5) > 1e-5 {
		t.Errorf("fractional resize = %v", got)
	}
	// A constant image stays constant (weights sum to 1) for any ratio.
	c := make([]float32, 64*64*3)
	for i := range c {
		c[i] = 0.25
	}
	for _, size := range []int{32, 28, 17} {
		for _, v := range resizeArea(c, 64, 64, 3, size) {
			if math.Abs(float64(v)-0.25) > 1e-5 {
				t.Fatalf("size %d: constant image became %v", size, v)
			}
		}
	}
}

func TestPadAndExpand(t *testing.T) {
	got := expand(pad([]float32{1, 2, 3, 4}, 2, 2, 4), 3)
	if len(got) != 4*4*3 || got[(1*4+1)*3] != 1 || got[(2*4+2)*3+2] != 4 || got[0] != 0 {
		t.Errorf("pad/expand = %v", got)
	}
}

// writeEmoji plants a tiny emoji data set: one half-transparent red 64x64 image.
func writeEmoji(t *testing.T) dataset.Emoji {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, 64, 64))
	for y := 0; y < 64; y++ {
		for x := 0; x < 64; x++ {
			if x < 32 {
				img.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 255})
			} else {
				img.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 0}) // transparent: white after compositing
			}
		}
	}
	p := filepath.Join(t.TempDir(), "x.png")
	f, _ := os.Create(p)
	png.Encode(f, img)
	f.Close()
	return dataset.Emoji{Name: "TEST", Path: p}
}

func TestEmojiOverWhite(t *testing.T) {
	src := &emojiSource{emojis: []dataset.Emoji{writeEmoji(t)}, size: 32, ch: 3}
	px, err := src.render(0)
	if err != nil {
		t.Fatal(err)
	}
	left, right := px[(5*32+3)*3:(5*32+3)*3+3], px[(5*32+30)*3:(5*32+30)*3+3]
	if left[0] != 1 || left[1] != 0 || left[2] != 0 || right[0] != 1 || right[1] != 1 || right[2] != 1 {
		t.Errorf("left %v (want red), right %v (want white)", left, right)
	}
	gray := &emojiSource{emojis: src.emojis, size: 16, ch: 1}
	g, _ := gray.render(0)
	if len(g) != 256 || math.Abs(float64(g[0])-0.299) > 1e-5 || g[15] != 1 {
		t.Errorf("gray emoji: %v %v", g[0], g[15])
	}
	p, err := PNG(px, 32, 3)
	if err != nil {
		t.Fatal(err)
	}
	back, err := png.Decode(strings.NewReader(string(p)))
	if err != nil {
		t.Fatal(err)
	}
	if r, _, _, _ := back.At(3, 5).RGBA(); r>>8 != 255 {
		t.Errorf("PNG round trip lost red: %d", r>>8)
	}
}

func TestMailText(t *testing.T) {
	m := dataset.Mail{Text: "Subject: Cheap =\r\n stuff\nContent-Transfer-Encoding: quoted-printable\n\n" +
		"<html><head><style>p{}</style></head><body><p>Buy n=\now &amp; save =3D 50%</p></body></html>"}
	got := mailText(m)
	want := "subject: Cheap = stuff Buy now & save = 50%"
	if got != want {
		t.Errorf("mailText = %q, want %q", got, want)
	}
	multi := dataset.Mail{Text: "Subject: =?iso-8859-1?Q?Offer?=\nMIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"XX\"\n\n" +
		"preamble\n--XX\nContent-Type: text/html\n\n<p>html version</p>\n--XX\nContent-Type: text/plain; charset=us-ascii\n" +
		"Content-Transfer-Encoding: base64\n\nUGxhaW4gdGV4dCB2\nZXJzaW9u\n--XX--\n"}
	if got := mailText(multi); got != "subject: Offer Plain text version" {
		t.Errorf("multipart mailText = %q", got)
	}
	if s := cleanReview("Great.<br /><br />Really   great."); s != "Great. Really great." {
		t.Errorf("cleanReview = %q", s)
	}
	if s := truncateText("aaaa bbbb cccc", 11); s != "aaaa bbbb" {
		t.Errorf("truncateText = %q", s)
	}
	if s := truncateText("ééééé", 3); s != "é" {
		t.Errorf("truncateText cut inside a rune: %q", s)
	}
}

func TestPermutationIsFixed(t *testing.T) {
	// Pinned: changing the shuffle changes every split, and so every published number.
	got := permutation(10, 42)
	want := []int{4, 3, 8, 9, 6, 1, 7, 5, 2, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("permutation(10, 42) = %v, want %v", got, want)
		}
	}
}

func TestMissingDataSaysHowToInstall(t *testing.T) {
	t.Setenv(labdir.EnvData, t.TempDir())
	for _, name := range Names() {
		_, err := Load(name, Options{Fast: true})
		if err == nil || !strings.Contains(err.Error(), "go run ./kernel data") {
			t.Errorf("%s without data: %v", name, err)
		}
	}
	if _, err := Load("cifar", Options{}); err == nil || !strings.Contains(err.Error(), "known:") {
		t.Errorf("unknown task: %v", err)
	}
	if _, err := Load("imdb", Options{Channels: 2}); err == nil {
		t.Error("Channels 2 accepted")
	}
}

func TestDefaultOptionsFastFromEnv(t *testing.T) {
	t.Setenv(mode.EnvFast, "1")
	if !DefaultOptions().Fast {
		t.Error("PEFTLAB_FAST=1 did not select the fast subset")
	}
	t.Setenv(mode.EnvFast, "")
	if DefaultOptions().Fast {
		t.Error("fast subset without PEFTLAB_FAST")
	}
}
