package lab

import (
	"bytes"
	"strings"
	"testing"

	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tasks/taskstest"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// TestTrainAndWatch trains every weight of a tiny LM on the lights task with a progress
// display (Watch), then through Train, which restores the trainer's callbacks.
func TestTrainAndWatch(t *testing.T) {
	b := backendtest.Backend(t)
	task, tok := taskstest.Lights(t)
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: 16, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	base := model.Config{Name: "tiny-lm", Vocab: tok.VocabSize(), Width: 32, Heads: 2, Blocks: 1, MLPDim: 64, MaxLen: 16}
	scope := mlmodel.NewStore().RootScope()
	if err := scope.Store().SetRNGStateFromSeed(1); err != nil {
		t.Fatal(err)
	}
	if err := model.Init(b, scope, base); err != nil {
		t.Fatal(err)
	}
	pm, err := peft.New(base.Layout(), peft.Adapter{Name: "all", Method: full.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trainer.New(b, scope, base, pm, trainer.Config{Steps: 60, BatchSize: 16, LR: 3e-3, EvalEvery: 30, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	tr.OnStep = func(trainer.StepPoint) { steps++ }
	var text bytes.Buffer
	// Watch alone, to capture its text output; Train is Watch + Run + Done.
	p := Watch(tr, "lights")
	p.Text = &text
	if _, err := tr.Run(src); err != nil {
		t.Fatal(err)
	}
	p.Done()
	if steps != 60 {
		t.Errorf("an OnStep set before Watch ran %d times, want 60", steps)
	}
	out := text.String()
	if !strings.Contains(out, "lights") || !strings.Contains(out, "loss ") || !strings.Contains(out, "eval loss") || !strings.Contains(out, "token accuracy") {
		t.Errorf("progress output lacks the name, the loss or the evaluation:\n%s", out)
	}
	if n := strings.Count(out, "\n"); n > 15 {
		t.Errorf("progress printed %d lines for 60 steps; it should print a few", n)
	}

	// Train restores the callbacks it found and returns a run that tabulates.
	tr2, err := trainer.New(b, scope, base, pm, trainer.Config{Steps: 62, BatchSize: 16, LR: 1e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	tr2.OnStep = func(trainer.StepPoint) { steps++ }
	run, err := Train(tr2, src, "more")
	if err != nil {
		t.Fatal(err)
	}
	if run.Name != "more" || len(run.Record.Steps) != 62 || tr2.OnEval != nil || tr2.OnStep == nil {
		t.Errorf("Train: run %q with %d steps; callbacks after: step %v eval %v", run.Name, len(run.Record.Steps), tr2.OnStep != nil, tr2.OnEval != nil)
	}
}
