package lab

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// ExportColumns are the columns of ExportCSV, one run per row. Where Hugging Face PEFT's
// method_comparison results have a field for the same thing, the column takes its name
// (experiment_name, peft_type, num_trainable_params, file_size, train_time, test_accuracy);
// the others are peftlab's. test_accuracy holds the task metric on the test split, whatever
// it is (the metric column names it: accuracy or cider-d).
var ExportColumns = []string{"id", "experiment_name", "base", "task", "peft_type", "rank", "placement", "lr", "seed",
	"steps", "batch_size", "fast", "state", "metric", "valid_accuracy", "test_accuracy", "num_trainable_params",
	"num_total_params", "file_size", "train_time", "step_time", "eval_loss", "finished", "error"}

// ExportCSV writes the runs as CSV with the header ExportColumns.
func ExportCSV(w io.Writer, sums []Summary) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(ExportColumns); err != nil {
		return err
	}
	for _, s := range sums {
		score := func(split string) string {
			if v, ok := s.Scores[split]; ok {
				return strconv.FormatFloat(v, 'g', -1, 64)
			}
			return ""
		}
		finished := ""
		if !s.Finished.IsZero() {
			finished = s.Finished.Format(time.RFC3339)
		}
		row := []string{s.ID, s.Name, s.Base, s.Task, s.Method, strconv.Itoa(s.Rank), s.Placement,
			strconv.FormatFloat(s.LR, 'g', -1, 64), strconv.FormatInt(s.Seed, 10), strconv.Itoa(s.Steps),
			strconv.Itoa(s.BatchSize), strconv.FormatBool(s.Fast), string(s.State), s.Metric,
			score(SplitValidation), score(SplitTest), strconv.Itoa(s.Trainable), strconv.Itoa(s.Total),
			strconv.FormatInt(s.AdapterBytes, 10), strconv.FormatFloat(s.TrainSeconds, 'g', 6, 64),
			strconv.FormatFloat(s.StepSeconds, 'g', 6, 64), strconv.FormatFloat(s.EvalLoss, 'g', 6, 64), finished, s.Error}
		if len(row) != len(ExportColumns) {
			return fmt.Errorf("export: %d fields for %d columns", len(row), len(ExportColumns))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ExportJSON writes the runs as a JSON array of objects keyed by ExportColumns (numbers as
// numbers, absent scores as null).
func ExportJSON(w io.Writer, sums []Summary) error {
	out := make([]map[string]any, len(sums))
	for i, s := range sums {
		score := func(split string) any {
			if v, ok := s.Scores[split]; ok {
				return v
			}
			return nil
		}
		m := map[string]any{"id": s.ID, "experiment_name": s.Name, "base": s.Base, "task": s.Task, "peft_type": s.Method,
			"rank": s.Rank, "placement": s.Placement, "lr": s.LR, "seed": s.Seed, "steps": s.Steps, "batch_size": s.BatchSize,
			"fast": s.Fast, "state": s.State, "metric": s.Metric, "valid_accuracy": score(SplitValidation),
			"test_accuracy": score(SplitTest), "num_trainable_params": s.Trainable, "num_total_params": s.Total,
			"file_size": s.AdapterBytes, "train_time": s.TrainSeconds, "step_time": s.StepSeconds, "eval_loss": s.EvalLoss,
			"finished": s.Finished, "error": s.Error}
		for k := range m {
			if !slices.Contains(ExportColumns, k) {
				return fmt.Errorf("export: key %q is not an export column", k)
			}
		}
		out[i] = m
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
