package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/claims"
	"github.com/peftlab/peftlab/pkg/lab"
)

// TestWritesTheReadmeSection plants a store with three full-mode seeds of two rank-curve
// points (the others missing) and one fast run, and checks that the README's section is
// rewritten between its markers, the rest of the README kept, and the CSV export written.
func TestWritesTheReadmeSection(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "runs")
	plant := func(id string, s lab.Summary) {
		d := filepath.Join(store, id)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		s.ID, s.State = id, lab.Done
		data, _ := json.Marshal(s)
		_ = os.WriteFile(filepath.Join(d, "summary.json"), data, 0o644)
		_ = os.WriteFile(filepath.Join(d, "done.json"), []byte("{}"), 0o644)
	}
	for i, seed := range []int64{1, 2, 3} {
		for _, rank := range []int{1, 4} {
			plant(strings.Repeat("a", rank)+string(rune('0'+i)), lab.Summary{Base: "vlm-instruct", Task: "mnist-parity",
				Method: "ADALINK", Rank: rank, Placement: "both", Steps: 200, Seed: seed, Metric: "accuracy",
				Scores: map[string]float64{lab.SplitTest: 0.9}})
		}
	}
	plant("fast", lab.Summary{Base: "vlm-instruct", Task: "mnist-parity", Method: "ADALINK", Rank: 16, Fast: true})
	readme := filepath.Join(dir, "README.md")
	before := "# title\n\nintro\n\n" + claims.Begin + "\nstale\n" + claims.End + "\n\n## after\n"
	if err := os.WriteFile(readme, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	csvPath := filepath.Join(dir, "runs.csv")
	if err := run([]string{"-store", store, "-readme", readme, "-csv", csvPath}, &out); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(readme)
	s := string(got)
	if !strings.HasPrefix(s, "# title\n\nintro\n\n"+claims.Begin+"\n") || !strings.HasSuffix(s, claims.End+"\n\n## after\n") || strings.Contains(s, "stale") {
		t.Errorf("README:\n%s", s)
	}
	if !strings.Contains(s, "6 full-mode runs") || !strings.Contains(s, "| AdaLink r=1 both | 90.0% ± 0.0 (n=3) |") ||
		!strings.Contains(s, "| 3 | AdaLink's quality is roughly flat across ranks. | **not measured yet** |") {
		t.Errorf("section:\n%s", s)
	}
	if data, err := os.ReadFile(csvPath); err != nil || strings.Count(string(data), "\n") != 8 {
		t.Errorf("csv: %v\n%s", err, data)
	}
	if err := run([]string{"-store", filepath.Join(dir, "none")}, &out); err == nil {
		t.Error("a missing store: no error")
	}

	// The archive: the first pass stores the six full-mode runs (not the fast one); a later
	// pass on another machine, without the store, judges the same runs, and its own store's
	// new seed joins them.
	archive := filepath.Join(dir, "results", "runs.json")
	if err := run([]string{"-store", store, "-archive", archive, "-readme", readme}, &out); err != nil {
		t.Fatal(err)
	}
	var kept []lab.Summary
	if data, err := os.ReadFile(archive); err != nil || json.Unmarshal(data, &kept) != nil || len(kept) != 6 {
		t.Fatalf("archive: %v, %d runs", err, len(kept))
	}
	_ = os.RemoveAll(store)
	plant("b4", lab.Summary{Base: "vlm-instruct", Task: "mnist-parity", Method: "ADALINK", Rank: 1, Placement: "both",
		Steps: 200, Seed: 4, Metric: "accuracy", Scores: map[string]float64{lab.SplitTest: 0.5}})
	if err := run([]string{"-store", store, "-archive", archive, "-readme", readme}, &out); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(readme)
	if s := string(got); !strings.Contains(s, "7 full-mode runs") || !strings.Contains(s, "| AdaLink r=1 both | 80.0% ± 20.0 (n=4) |") {
		t.Errorf("section from the archive and a new store:\n%s", s)
	}
	_ = os.RemoveAll(store)
	if err := run([]string{"-store", store, "-archive", archive}, &out); err != nil {
		t.Errorf("the archive alone: %v", err)
	}
	data, _ := os.ReadFile(archive)
	bad := strings.Replace(string(data), `"base"`, `"bsae"`, 1)
	_ = os.WriteFile(archive, []byte(bad), 0o644)
	if err := run([]string{"-store", store, "-archive", archive}, &out); err == nil || !strings.Contains(err.Error(), "bsae") {
		t.Errorf("an archive with an unknown field: %v", err)
	}
}
