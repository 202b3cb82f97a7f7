package lab_test

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/lab"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Compare what three methods would train on one base, before training anything (the base has
// 335,400 weights: AdaLink adds 2·d·r = 1,024 per modality, LoRA r·(d+d) = 512 per matrix). In a
// notebook the table is HTML; here it prints as text.
func ExamplePlanRow() {
	base := model.Config{Name: "demo", Vocab: 1000, Width: 64, Heads: 4, Blocks: 4, MLPDim: 256, MaxLen: 32,
		ImageSize: 16, PatchSize: 4, Channels: 3}
	methods := []struct {
		name   string
		method peft.Method
	}{
		{"AdaLink r=4", adalink.Config{Rank: 4}},
		{"LoRA q,v r=4", lora.Config{Rank: 4}},
		{"prompt p=8", prompt.Config{Tokens: 8}},
	}
	var rows [][]string
	for _, m := range methods {
		pm, err := peft.New(base.Layout(), peft.Adapter{Name: "task", Method: m.method})
		if err != nil {
			fmt.Println(err)
			return
		}
		rows = append(rows, lab.PlanRow(m.name, pm))
	}
	nbui.Table(lab.PlanHeader, rows)
	// Output:
	// name          method         where                           weights  trainable  of all
	// AdaLink r=4   ADALINK        input/text, input/image         4        1024       0.304%
	// LoRA q,v r=4  LORA           block/*/attn/q, block/*/attn/v  16       4096       1.21%
	// prompt p=8    PROMPT_TUNING  input/text                      1        512        0.152%
}

// Tabulate runs: here two records made by hand; in a notebook they come from lab.Train.
func ExampleResults() {
	run := func(name, peftType string, trainable int, seconds ...float64) lab.Run {
		rec := &trainer.Record{TrainableParams: trainable, PlannedTotal: 100000,
			Adapters: []trainer.AdapterRecord{{Name: "task", Type: peftType}}}
		for i, s := range seconds {
			rec.Steps = append(rec.Steps, trainer.StepPoint{Step: i, Loss: 1, Seconds: s})
		}
		rec.Evals = []trainer.EvalPoint{{Step: len(seconds), Metrics: trainer.Metrics{Loss: 0.5}}}
		return lab.Run{Name: name, Record: rec, Metric: "accuracy", Score: 0.9}
	}
	lab.ShowResults(
		lab.Run{Name: "base, untuned", Metric: "accuracy", Score: 0.5},
		run("AdaLink r=4", "ADALINK", 1024, 2.0, 0.12, 0.10, 0.11),
		run("LoRA q,v r=4", "LORA", 4096, 2.1, 0.13, 0.13, 0.14),
	)
	// Output:
	// run            method   trainable  of all  steps  step time  eval loss  accuracy
	// base, untuned  –        0          0%      0      –          –          50.0%
	// AdaLink r=4    ADALINK  1024       1.02%   4      110 ms     0.5000     90.0%
	// LoRA q,v r=4   LORA     4096       4.10%   4      130 ms     0.5000     90.0%
}
