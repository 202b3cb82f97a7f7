package eval

import (
	"strings"
	"testing"

	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tasks/taskstest"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// tinyLM returns a freshly initialised one-block language model for tok.
func tinyLM(t *testing.T, tok *tokenizer.Tokenizer, width, maxLen int) (model.Config, *mlmodel.Scope) {
	t.Helper()
	c := model.Config{Name: "tiny-lm", Vocab: tok.VocabSize(), Width: width, Heads: 2, Blocks: 1, MLPDim: 2 * width, MaxLen: maxLen}
	scope := mlmodel.NewStore().RootScope()
	if err := scope.Store().SetRNGStateFromSeed(1); err != nil {
		t.Fatal(err)
	}
	if err := model.Init(backendtest.Backend(t), scope, c); err != nil {
		t.Fatal(err)
	}
	return c, scope
}

// A tiny LM trained on the lights task answers every test example right, with the prompt
// layout of training, where the untrained model scores about chance; the answers do not
// depend on the batch size or on room to generate past [EOS].
func TestScoreAfterTraining(t *testing.T) {
	b := backendtest.Backend(t)
	task, tok := taskstest.Lights(t)
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: 16, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	base, scope := tinyLM(t, tok, 32, 16)
	pm, err := peft.New(base.Layout(), peft.Adapter{Name: "all", Method: full.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	g := Generator{Backend: b, Ctx: scope, Base: base, Hook: pm, Tokenizer: tok, Source: src}
	_, before, _, err := g.Score(task, task.Test)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trainer.New(b, scope, base, pm, trainer.Config{Steps: 60, BatchSize: 16, LR: 3e-3, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Run(src); err != nil {
		t.Fatal(err)
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
	g.BatchSize, g.MaxNew = 5, AnswerBudget(task, tok)+3 // splits the examples; room to go on after [EOS]
	again, err := g.Answers(task.Test)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(again, "|") != strings.Join(answers, "|") {
		t.Errorf("answers depend on the batch size or the budget:\n%q\n%q", again, answers)
	}
}

// Score's own budget never asks for more tokens than the source's sequence length leaves
// room for: a captioning task with long references still scores.
func TestScoreBudgetFitsTheSource(t *testing.T) {
	task, tok := taskstest.Lights(t)
	long := strings.Repeat("the bike light is green ", 4)
	task.Kind, task.Classes, task.Metric = tasks.Captioning, nil, tasks.MetricCIDErD
	task.Train = append(task.Train, tasks.Example{Prompt: "what now?", Target: long, References: []string{long}})
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: 12, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	if AnswerBudget(task, tok) <= src.MaxNew() {
		t.Fatalf("the test needs references longer than the source's room (%d tokens)", src.MaxNew())
	}
	base, scope := tinyLM(t, tok, 8, 12)
	g := Generator{Backend: backendtest.Backend(t), Ctx: scope, Base: base, Tokenizer: tok, Source: src}
	_, _, answers, err := g.Score(task, task.Test)
	if err != nil || len(answers) != len(task.Test) {
		t.Fatalf("scoring with long references: %d answers, %v", len(answers), err)
	}
}

func TestGeneratorErrors(t *testing.T) {
	task, tok := taskstest.Lights(t)
	if _, err := (Generator{}).Answers(task.Test); err == nil || !strings.Contains(err.Error(), "needs") {
		t.Errorf("empty Generator: %v", err)
	}
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: 16, Objective: trainer.LanguageModel}, task)
	if err != nil {
		t.Fatal(err)
	}
	base, scope := tinyLM(t, tok, 8, 16)
	g := Generator{Backend: backendtest.Backend(t), Ctx: scope, Base: base, Tokenizer: tok, Source: src, MaxNew: 20}
	if _, err := g.Answers(task.Test); err == nil || !strings.Contains(err.Error(), "maxNew") {
		t.Errorf("an answer budget beyond MaxLen: %v", err)
	}
	if _, _, _, err := g.Score(task, nil); err == nil || !strings.Contains(err.Error(), "no examples") {
		t.Errorf("no examples: %v", err)
	}
}
