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

// Tabulate runs over seeds: here summaries made by hand; in a notebook they come from a
// grid (GridResult.Summaries) or the store (Store.List).
func ExampleTable() {
	var sums []lab.Summary
	for i, score := range []float64{0.90, 0.92, 0.94} {
		sums = append(sums, lab.Summary{Name: "AdaLink r=8", Method: "ADALINK", State: lab.Done, Seed: int64(i + 1),
			Trainable: 2048, Total: 432896, Metric: "accuracy", StepSeconds: 0.17,
			Scores: map[string]float64{lab.SplitValidation: score - 0.02, lab.SplitTest: score}})
	}
	nbui.Table(lab.Table(sums))
	// Output:
	// configuration  method   trainable  of all  seeds  validation   test         step time  note
	// AdaLink r=8    ADALINK  2048       0.473%  3      90.0% ± 2.0  92.0% ± 2.0  170 ms
}
