package bases

import (
	"math"
	"testing"

	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/dataset/datatest"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// A short run of AdaLink, LoRA and full fine-tuning on a text task and a multimodal task the
// base never saw: every step's loss is finite, the validation loss on the answers goes down,
// the PEFT methods leave the base bit-identical (its hash is the shipped one), and the next
// Load after full fine-tuning has the shipped weights again.
func TestMethodsAdaptShippedBases(t *testing.T) {
	cases := []struct {
		base, task string
		sets       []string
		seqLen     int
	}{
		{Text, "imdb", []string{"imdb"}, 48},
		{VLMInstruct, "mnist-parity", []string{"mnist"}, 32},
	}
	methods := []struct {
		name   string
		method peft.Method
		lr     float64
	}{
		{"AdaLink", adalink.Config{Rank: 4}, 1e-2},
		{"LoRA", lora.Config{Rank: 4}, 1e-2},
		{"FT", full.Config{}, 2e-3},
	}
	for _, tc := range cases {
		t.Run(tc.base+"/"+tc.task, func(t *testing.T) {
			datatest.Require(t, tc.sets...)
			task, err := tasks.Load(tc.task, tasks.Options{Fast: true})
			if err != nil {
				t.Fatal(err)
			}
			task.Validation = task.Validation[:32]
			r, err := ShippedReport(tc.base)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range methods {
				t.Run(m.name, func(t *testing.T) { shortRun(t, tc.base, tc.seqLen, task, m.method, m.lr, r.BaseHash) })
			}
		})
	}
}

// shortRun trains one adapter on the shipped base for a few steps and checks the run.
func shortRun(t *testing.T, base string, seqLen int, task *tasks.Task, method peft.Method, lr float64, shippedHash string) {
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(base)
	if err != nil {
		t.Fatal(err)
	}
	c, scope, tok := loaded.Config, loaded.Scope, loaded.Tokenizer
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: seqLen, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := peft.New(c.Layout(), peft.Adapter{Name: task.Name, Method: method})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trainer.New(b, scope, c, pm, trainer.Config{Steps: 6, BatchSize: 8, LR: lr, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := tr.Run(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.Steps {
		if math.IsNaN(p.Loss) || math.IsInf(p.Loss, 0) {
			t.Fatalf("step %d: loss %v", p.Step, p.Loss)
		}
	}
	first, last := rec.Evals[0], rec.Evals[len(rec.Evals)-1]
	t.Logf("validation loss %.3f -> %.3f (%d trainable)", first.Loss, last.Loss, rec.TrainableParams)
	if !(last.Loss < first.Loss) {
		t.Fatalf("validation loss did not improve: %.4f -> %.4f", first.Loss, last.Loss)
	}
	hash, err := peft.BaseHash(scope)
	if err != nil {
		t.Fatal(err)
	}
	if frozen := method.Type() != full.PeftType; frozen != (hash == shippedHash) {
		t.Fatalf("%s: base hash after training %s, shipped %s", method.Type(), hash, shippedHash)
	}
	// Full fine-tuning changed this Load's weights, never the next one's.
	again, err := Load(base)
	if err != nil {
		t.Fatal(err)
	}
	if hash, err := peft.BaseHash(again.Scope); err != nil || hash != shippedHash {
		t.Fatalf("%s: a Load after training has weights %s (%v), shipped %s", method.Type(), hash, err, shippedHash)
	}
}
