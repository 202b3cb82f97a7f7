package lab

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/peftlab/peftlab/pkg/tasks"
)

// grid3 is a 2-configuration × 3-seed grid of summaries with hand-picked scores.
func grid3() []Summary {
	var sums []Summary
	scores := map[string][]float64{"4": {0.8, 0.9, 1.0}, "8": {0.5, 0.7, 0.6}}
	for _, rank := range []string{"4", "8"} {
		for i, seed := range []string{"1", "2", "3"} {
			n, _ := strconv.Atoi(rank)
			sums = append(sums, Summary{ID: rank + seed, Name: "r" + rank, State: Done, Method: "ADALINK", Rank: n,
				Trainable: 64 * n, Metric: tasks.MetricAccuracy, Seed: int64(i + 1),
				Scores: map[string]float64{SplitTest: scores[rank][i], SplitValidation: scores[rank][i] / 2},
				Point:  map[string]string{"rank": rank, "seed": seed}})
		}
	}
	return sums
}

// TestTableMeanAndSpread checks the table's mean ± spread against a hand computation: for
// 0.8, 0.9, 1.0 the mean is 0.9 and the sample standard deviation sqrt((0.01+0+0.01)/2) = 0.1.
func TestTableMeanAndSpread(t *testing.T) {
	sums := grid3()
	groups := GroupBySeed(sums)
	if len(groups) != 2 || len(groups[0].Runs) != 3 || groups[0].Key != "rank=4" {
		t.Fatalf("groups: %+v", groups)
	}
	st := groups[0].Score(SplitTest)
	if math.Abs(st.Mean-0.9) > 1e-12 || math.Abs(st.Spread-0.1) > 1e-12 || st.N != 3 {
		t.Errorf("rank 4: %+v, want 0.9 ± 0.1 over 3", st)
	}
	// 0.5, 0.7, 0.6: mean 0.6, deviations -0.1, 0.1, 0: spread 0.1 again.
	st = groups[1].Score(SplitTest)
	if math.Abs(st.Mean-0.6) > 1e-12 || math.Abs(st.Spread-0.1) > 1e-12 {
		t.Errorf("rank 8: %+v, want 0.6 ± 0.1", st)
	}
	_, rows := Table(sums)
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0][0] != "rank=4" || rows[0][4] != "3" || rows[0][6] != "90.0% ± 10.0" || rows[0][5] != "45.0% ± 5.0" {
		t.Errorf("row: %q", rows[0])
	}
	// A failed seed is left out of the mean and named in the note.
	sums[2].State, sums[2].Error = Failed, "loss is NaN"
	_, rows = Table(sums)
	if rows[0][6] != "85.0% ± 7.1" || rows[0][8] != "seed 3 failed: loss is NaN" {
		t.Errorf("row with a failed seed: %q", rows[0])
	}
}

// TestPareto marks the front: a configuration is on it when no smaller-or-equal one scores
// at least as well.
func TestPareto(t *testing.T) {
	mk := func(key string, n int, v float64) Summary {
		return Summary{Name: key, State: Done, Method: "M", Trainable: n, Scores: map[string]float64{SplitTest: v}}
	}
	pts := Pareto([]Summary{mk("big-good", 1000, 0.9), mk("small-bad", 10, 0.5), mk("mid-worse", 100, 0.4), mk("mid-better", 200, 0.7)})
	want := map[string]bool{"small-bad": true, "mid-worse": false, "mid-better": true, "big-good": true}
	for _, p := range pts {
		if p.Front != want[p.Key] {
			t.Errorf("%s: front = %v", p.Key, p.Front)
		}
	}
	if pts[0].Key != "small-bad" || pts[3].Key != "big-good" {
		t.Errorf("not sorted by size: %+v", pts)
	}
}

// TestExport writes the grid as CSV and JSON and reads the numbers back.
func TestExport(t *testing.T) {
	sums := grid3()
	var buf bytes.Buffer
	if err := ExportCSV(&buf, sums); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 7 || len(rows[0]) != len(ExportColumns) {
		t.Fatalf("csv: %d rows, %v", len(rows), err)
	}
	col := map[string]int{}
	for i, c := range rows[0] {
		col[c] = i
	}
	if rows[3][col["test_accuracy"]] != "1" || rows[1][col["num_trainable_params"]] != "256" || rows[1][col["peft_type"]] != "ADALINK" {
		t.Errorf("csv row: %q", rows[3])
	}
	buf.Reset()
	if err := ExportJSON(&buf, sums); err != nil {
		t.Fatal(err)
	}
	var back []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back) != 6 {
		t.Fatalf("json: %d, %v", len(back), err)
	}
	if back[1]["test_accuracy"].(float64) != 0.9 || back[4]["valid_accuracy"].(float64) != 0.35 {
		t.Errorf("json: %v", back[1])
	}
}
