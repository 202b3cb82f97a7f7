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
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// lights is a hand-made text task: a colour word decides the answer.
func lights(t *testing.T) (*tasks.Task, *tokenizer.Tokenizer) {
	t.Helper()
	classes := []string{"stop", "go"}
	colours := []string{"red", "green"}
	things := []string{"car", "bike", "bus", "tram"}
	var train, eval []tasks.Example
	var texts []string
	for i := range 64 {
		c := i % 2
		p := "the " + things[i/2%4] + " light is " + colours[c] + " what now?"
		e := tasks.Example{Prompt: p, Target: classes[c], References: []string{classes[c]}, Label: c}
		texts = append(texts, p, classes[c])
		if i < 48 {
			train = append(train, e)
		} else {
			eval = append(eval, e)
		}
	}
	tok, err := tokenizer.Train(texts, tokenizer.TrainOptions{VocabSize: 120})
	if err != nil {
		t.Fatal(err)
	}
	return &tasks.Task{Name: "lights", Kind: tasks.Classification, Classes: classes, Metric: tasks.MetricAccuracy,
		Train: train, Validation: eval, Test: eval}, tok
}

// TestTrainAndScore trains every weight of a tiny LM on the lights task through Train (with
// its progress display) and checks that the Generator's answers, produced with the prompt
// layout of training, are right where the untrained model's are not.
func TestTrainAndScore(t *testing.T) {
	b := backendtest.Backend(t)
	task, tok := lights(t)
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
	g := Generator{Backend: b, Ctx: scope, Base: base, Hook: pm, Tokenizer: tok, Source: src}
	_, before, _, err := g.Score(task, task.Test)
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

	metric, after, answers, err := g.Score(task, task.Test)
	if err != nil {
		t.Fatal(err)
	}
	if metric != tasks.MetricAccuracy || after < 0.99 || before > 0.6 {
		t.Errorf("accuracy %.2f before and %s %.2f after training (answers %q); want ~0.5 then 1", before, metric, after, answers)
	}
	for i, a := range answers {
		if a != task.Test[i].Target {
			t.Errorf("answer %d = %q, want %q (cut at [EOS], decoded)", i, a, task.Test[i].Target)
			break
		}
	}
	// A batch size that splits the examples, and room for more tokens, give the same answers.
	g.BatchSize, g.MaxNew = 5, answerBudget(task, tok)+3 // room to go on after [EOS]
	again, err := g.Answers(task.Test)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again, "|") != strings.Join(answers, "|") {
		t.Errorf("answers depend on the batch size:\n%q\n%q", again, answers)
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

func TestGeneratorErrors(t *testing.T) {
	task, tok := lights(t)
	if _, err := (Generator{}).Answers(task.Test); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("empty Generator: %v", err)
	}
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: 16, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	b := backendtest.Backend(t)
	base := model.Config{Vocab: tok.VocabSize(), Width: 8, Heads: 2, Blocks: 1, MLPDim: 8, MaxLen: 16}
	scope := mlmodel.NewStore().RootScope()
	if err := model.Init(b, scope, base); err != nil {
		t.Fatal(err)
	}
	g := Generator{Backend: b, Ctx: scope, Base: base, Tokenizer: tok, Source: src, MaxNew: 20}
	if _, err := g.Answers(task.Test); err == nil || !strings.Contains(err.Error(), "maxNew") {
		t.Errorf("an answer budget beyond MaxLen: %v", err)
	}
	if _, _, _, err := g.Score(task, nil); err == nil || !strings.Contains(err.Error(), "no examples") {
		t.Errorf("no examples: %v", err)
	}
}
