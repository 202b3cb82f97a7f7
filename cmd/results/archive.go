package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/lab"
)

// The archive (results/runs.json, committed with the README) holds the summaries of the
// full-mode runs the results section is computed from. The run store (notebooks/runs) is a
// cache on one machine and is not committed, while the full grids take longer than one
// sitting: each `make results` merges what the store finished into the archive and judges
// the claims on the union, so runs accumulate across sessions and machines. A claim takes
// one run per seed (the latest finished, claims.Config.Select), so a seed run on two
// machines is not counted twice.

// archived reports whether a run belongs in the archive: full mode, done, with a test score.
func archived(s lab.Summary) bool {
	_, scored := s.Scores[lab.SplitTest]
	return !s.Fast && s.State == lab.Done && scored
}

// readArchive reads the archive at path; a missing file is an empty archive. Unknown fields
// are refused: an archive written by another layout must not be half-read.
func readArchive(path string) ([]lab.Summary, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sums []lab.Summary
	if err := dec.Decode(&sums); err != nil {
		return nil, fmt.Errorf("archive %s: %w", path, err)
	}
	for i, s := range sums {
		if s.ID == "" || !archived(s) {
			return nil, fmt.Errorf("archive %s: entry %d (%q) is not a finished full-mode run with a test score", path, i, s.ID)
		}
	}
	return sums, nil
}

// merge returns the archive's runs with the store's archivable runs added, a run in both
// taken from the store, ordered by id.
func merge(archive, store []lab.Summary) []lab.Summary {
	byID := map[string]lab.Summary{}
	for _, s := range archive {
		byID[s.ID] = s
	}
	for _, s := range store {
		if archived(s) {
			byID[s.ID] = s
		}
	}
	out := make([]lab.Summary, 0, len(byID))
	for _, s := range byID {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b lab.Summary) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// writeArchive writes sums to path atomically, one run per entry.
func writeArchive(path string, sums []lab.Summary) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return atomicfile.Write(path, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", " ")
		if sums == nil {
			sums = []lab.Summary{}
		}
		return enc.Encode(sums)
	})
}

// withBackends fills in the backend of store runs whose summaries predate the field, from
// their config.json (the run's identity), so that every archived run says where it ran.
func withBackends(store string, sums []lab.Summary) {
	for i, s := range sums {
		if s.Backend != "" {
			continue
		}
		var c struct {
			Identity struct {
				Backend string `json:"backend"`
			} `json:"identity"`
		}
		if data, err := os.ReadFile(filepath.Join(store, s.ID, "config.json")); err == nil && json.Unmarshal(data, &c) == nil {
			sums[i].Backend = c.Identity.Backend
		}
	}
}

// backends lists the distinct backends the runs ran on, "unrecorded" for runs without one.
func backends(sums []lab.Summary) string {
	var out []string
	for _, s := range sums {
		b := s.Backend
		if b == "" {
			b = "unrecorded"
		}
		if !slices.Contains(out, b) {
			out = append(out, b)
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, "; ")
}
