package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Fortune is one quote of the fortune database.
type Fortune struct {
	Category string // the topic file it comes from, e.g. "science"
	Text     string
}

// FortuneCategories lists the topic files, in alphabetical order.
func FortuneCategories() []string {
	names := make([]string, len(fortuneFiles))
	for i, f := range fortuneFiles {
		names[i] = f.name
	}
	return names
}

// Fortunes loads every quote, by category in alphabetical order, each file in its own order.
func Fortunes() ([]Fortune, error) {
	dir, err := open("fortunes")
	if err != nil {
		return nil, err
	}
	var out []Fortune
	for _, cat := range FortuneCategories() {
		b, err := os.ReadFile(filepath.Join(dir, cat))
		if err != nil {
			return nil, damaged("fortunes", err)
		}
		for _, q := range splitFortunes(string(b)) {
			out = append(out, Fortune{Category: cat, Text: q})
		}
	}
	if len(out) == 0 {
		return nil, damaged("fortunes", fmt.Errorf("no quotes found"))
	}
	return out, nil
}

// splitFortunes splits a strfile source: quotes separated by lines holding a single "%".
func splitFortunes(s string) []string {
	var out []string
	var cur []string
	flush := func() {
		if q := strings.TrimSpace(strings.Join(cur, "\n")); q != "" {
			out = append(out, q)
		}
		cur = cur[:0]
	}
	for _, line := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n") {
		if line == "%" {
			flush()
			continue
		}
		cur = append(cur, line)
	}
	flush()
	return out
}
