package dataset

import (
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Emoji is one emoji of the Google (Noto) set with its 64x64 image. Skin-tone variations are
// not included.
type Emoji struct {
	Name        string   // e.g. "GRINNING FACE" (upper case in the source; see Caption)
	ShortNames  []string // e.g. ["grinning"]
	Category    string   // one of EmojiCategories
	Subcategory string   // e.g. "face-smiling" (about 100 of them)
	Unified     string   // code points, e.g. "1F600"
	Path        string   // absolute path of the 64x64 RGBA PNG
	SortOrder   int
}

// Caption is the emoji's name in lower case, e.g. "grinning face".
func (e Emoji) Caption() string { return strings.ToLower(e.Name) }

// Image decodes the emoji's PNG as non-premultiplied RGBA.
func (e Emoji) Image() (*image.NRGBA, error) {
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, damaged("emoji", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, damaged("emoji", fmt.Errorf("%s: %w", filepath.Base(e.Path), err))
	}
	if n, ok := img.(*image.NRGBA); ok {
		return n, nil
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n, nil
}

// EmojiCategories are the emoji categories, in the source's order.
var EmojiCategories = []string{"Smileys & Emotion", "People & Body", "Component", "Animals & Nature",
	"Food & Drink", "Travel & Places", "Activities", "Objects", "Symbols", "Flags"}

// Emojis loads the emoji with a Google image, sorted as in the source (sort_order). Every image
// file must be present; decoding happens on demand with Emoji.Image.
func Emojis() ([]Emoji, error) {
	dir, err := open("emoji")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "emoji.json"))
	if err != nil {
		return nil, damaged("emoji", err)
	}
	var raw []struct {
		Name         string   `json:"name"`
		Unified      string   `json:"unified"`
		Image        string   `json:"image"`
		ShortNames   []string `json:"short_names"`
		Category     string   `json:"category"`
		Subcategory  string   `json:"subcategory"`
		SortOrder    int      `json:"sort_order"`
		HasImgGoogle bool     `json:"has_img_google"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, damaged("emoji", fmt.Errorf("emoji.json: %w", err))
	}
	known := map[string]bool{}
	for _, c := range EmojiCategories {
		known[c] = true
	}
	imgDir := filepath.Join(dir, "img", "google", "64")
	out := make([]Emoji, 0, len(raw))
	for _, r := range raw {
		if !r.HasImgGoogle {
			continue
		}
		if r.Image == "" || strings.ContainsAny(r.Image, `/\`) || !known[r.Category] {
			return nil, damaged("emoji", fmt.Errorf("emoji.json: bad entry %q (image %q, category %q)", r.Name, r.Image, r.Category))
		}
		p := filepath.Join(imgDir, r.Image)
		if _, err := os.Stat(p); err != nil {
			return nil, damaged("emoji", fmt.Errorf("image of %q missing: %w", r.Name, err))
		}
		name := r.Name
		if name == "" && len(r.ShortNames) > 0 { // a few entries carry only short names
			name = strings.ToUpper(strings.ReplaceAll(r.ShortNames[0], "_", " "))
		}
		out = append(out, Emoji{Name: name, ShortNames: r.ShortNames, Category: r.Category,
			Subcategory: r.Subcategory, Unified: r.Unified, Path: p, SortOrder: r.SortOrder})
	}
	if len(out) == 0 {
		return nil, damaged("emoji", fmt.Errorf("emoji.json lists no emoji"))
	}
	sortEmojis(out)
	return out, nil
}

func sortEmojis(es []Emoji) {
	// The source is sorted by name; sort_order is the Unicode order that groups related emoji.
	slices.SortStableFunc(es, func(a, b Emoji) int { return a.SortOrder - b.SortOrder })
}
