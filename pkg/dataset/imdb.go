package dataset

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Review is one IMDB movie review.
type Review struct {
	Text     string // raw text; contains HTML line breaks ("<br />")
	Positive bool
}

// IMDB loads the 50,000 IMDB reviews (25,000 positive, 25,000 negative) in the package's order.
// There is no official split in this package: pkg/tasks makes a fixed seeded one.
func IMDB() ([]Review, error) {
	dir, err := open("imdb")
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "reviews.json"))
	if err != nil {
		return nil, damaged("imdb", err)
	}
	var raw []struct {
		T *string `json:"t"`
		S *int    `json:"s"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, damaged("imdb", fmt.Errorf("reviews.json: %w", err))
	}
	out := make([]Review, len(raw))
	for i, r := range raw {
		if r.T == nil || r.S == nil || (*r.S != 0 && *r.S != 1) {
			return nil, damaged("imdb", fmt.Errorf("reviews.json: entry %d is not {\"t\": text, \"s\": 0 or 1}", i))
		}
		out[i] = Review{Text: *r.T, Positive: *r.S == 1}
	}
	return out, nil
}
