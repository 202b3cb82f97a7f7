package claims

import (
	"math"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/lab"
)

// runs plants the runs of a configuration: one per score, seeds 1, 2, 3...
func runs(c Config, scores ...float64) []lab.Summary {
	var out []lab.Summary
	for i, v := range scores {
		out = append(out, lab.Summary{ID: c.Label, Base: c.Base, Task: c.Task, Method: c.Method, Rank: c.Rank,
			Placement: c.Placement, Steps: c.Steps, State: lab.Done, Seed: int64(i + 1), Metric: "accuracy",
			Scores: map[string]float64{lab.SplitTest: v}})
	}
	return out
}

// TestCompare checks the rule against a hand computation: means 0.9 and 0.6, both with
// sample standard deviation 0.1 over 3 seeds, differ by 0.3 > 2·sqrt(2·0.01/3) = 0.163.
func TestCompare(t *testing.T) {
	a, b := stat([]float64{0.8, 0.9, 1.0}, "accuracy"), stat([]float64{0.5, 0.6, 0.7}, "accuracy")
	s, d, margin := Compare(a, b)
	if s != 1 || math.Abs(d-0.3) > 1e-12 || math.Abs(margin-2*math.Sqrt(2*0.01/3)) > 1e-12 {
		t.Errorf("Compare = %d, %g, %g", s, d, margin)
	}
	c := stat([]float64{0.7, 0.9, 0.8}, "accuracy")
	if s, _, _ := Compare(a, c); s != 0 {
		t.Errorf("0.9 ± 0.1 against 0.8 ± 0.1 over 3 seeds: %d, want not settled", s)
	}
}

// TestRanks plants flat and steep rank curves and checks the verdicts.
func TestRanks(t *testing.T) {
	plant := func(means ...float64) []lab.Summary {
		var sums []lab.Summary
		for i, r := range []int{1, 4, 16, 64} {
			m := means[i]
			sums = append(sums, runs(adalinkAt("vlm-instruct", "mnist-parity", r, lab.OnBoth, vlmSteps), m-0.01, m, m+0.01)...)
		}
		return sums
	}
	if f := ranks(plant(0.90, 0.905, 0.90, 0.91)); f.Verdict != Supported {
		t.Errorf("flat ranks: %s (%s)", f.Verdict, f.Note)
	}
	if f := ranks(plant(0.70, 0.80, 0.90, 0.95)); f.Verdict != NotSupported {
		t.Errorf("steep ranks: %s (%s)", f.Verdict, f.Note)
	}
	if f := ranks(plant(0.90, 0.90, 0.90, 0.90)[:11]); f.Verdict != NotMeasured {
		t.Errorf("two seeds at rank 64: %s", f.Verdict)
	}
	// Fast-mode and unscored runs never count.
	sums := plant(0.9, 0.9, 0.9, 0.9)
	for i := range sums {
		sums[i].Fast = true
	}
	if f := ranks(sums); f.Verdict != NotMeasured {
		t.Errorf("fast runs: %s", f.Verdict)
	}
}

// TestOrdering plants the paper's ordering, then a prompt tuning that beats AdaLink.
func TestOrdering(t *testing.T) {
	plant := func(ft, lora, ada, prompt float64) []lab.Summary {
		var sums []lab.Summary
		for _, task := range vqaTasks {
			sums = append(sums, runs(ftAll("vlm-instruct", task, vlmSteps), ft-0.01, ft, ft+0.01)...)
			sums = append(sums, runs(loraQV("vlm-instruct", task, vlmSteps), lora-0.01, lora, lora+0.01)...)
			sums = append(sums, runs(adalinkAt("vlm-instruct", task, 8, lab.OnBoth, vlmSteps), ada-0.01, ada, ada+0.01)...)
			sums = append(sums, runs(promptP8("vlm-instruct", task, vlmSteps), prompt-0.01, prompt, prompt+0.01)...)
		}
		return sums
	}
	if f := ordering(plant(0.99, 0.98, 0.97, 0.80)); f.Verdict != Supported {
		t.Errorf("the paper's ordering: %s (%s)", f.Verdict, f.Note)
	}
	if f := ordering(plant(0.99, 0.98, 0.70, 0.90)); f.Verdict != NotSupported {
		t.Errorf("prompt above AdaLink: %s (%s)", f.Verdict, f.Note)
	}
	md := Markdown(Evaluate(plant(0.99, 0.98, 0.97, 0.80)), Meta{Date: "2026-12-01", Runs: 24})
	if !strings.Contains(md, "| 1 | On multimodal tasks") || !strings.Contains(md, "**supported**") || !strings.Contains(md, "97.0% ± 1.0 (n=3)") {
		t.Errorf("markdown:\n%s", md)
	}
}

// TestReplace writes between the markers and refuses a document without them.
func TestReplace(t *testing.T) {
	doc := "a\n" + Begin + "\nold\n" + End + "\nb\n"
	got, err := Replace(doc, "new\n")
	if err != nil || got != "a\n"+Begin+"\nnew\n"+End+"\nb\n" {
		t.Errorf("Replace = %q, %v", got, err)
	}
	if _, err := Replace("no markers", "x"); err == nil {
		t.Error("no markers: no error")
	}
}
