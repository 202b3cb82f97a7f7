// Package eval scores a (possibly adapted) model on a task by generating its answers, the
// way a generative VQA or captioning model is scored: prompt in, answer text out, the task's
// metric on the text.
//
// It is the one place generation is scored: the notebooks (through lab), the grids and
// pretraining's held-out scores all use Generator, so a number from one is comparable with a
// number from another.
//
//	metric, score, answers, err := eval.Generator{Backend: b, Ctx: base.Scope, Base: base.Config,
//		Hook: pm, Tokenizer: base.Tokenizer, Source: src}.Score(task, task.Test)
package eval

import (
	"errors"
	"fmt"

	"github.com/gomlx/compute"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/site"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// Generator answers a task's examples with a (possibly adapted) model by greedy generation.
// It is plain data; the zero values of MaxNew and BatchSize pick defaults.
type Generator struct {
	Backend compute.Backend
	// Ctx holds the base weights (and the adapters' weights, when Hook has adapters).
	Ctx  *mlmodel.Scope
	Base model.Config
	// Hook is the peft.Model with the adapters, or nil for the base alone.
	Hook      site.Hook
	Tokenizer *tokenizer.Tokenizer
	// Source lays out the prompts ([BOS] prompt [SEP]) as in training; it must be the
	// language-modelling source the adapters were trained with.
	Source *tasks.Source
	// MaxNew caps the generated tokens per answer. 0: Score uses the longest answer of the
	// task's classes or training references plus one (for [EOS]), at most what the Source's
	// MaxLen leaves room for; Answers uses 16.
	MaxNew int
	// BatchSize is how many examples generate at once (default 64). Answers do not depend on
	// it.
	BatchSize int
}

// Answers generates an answer for each example: greedy decoding after [BOS] prompt [SEP],
// cut at the first [EOS], decoded to text.
func (g Generator) Answers(examples []tasks.Example) ([]string, error) {
	if g.Backend == nil || g.Ctx == nil || g.Tokenizer == nil || g.Source == nil {
		return nil, errors.New("eval.Generator needs Backend, Ctx, Tokenizer and Source")
	}
	maxNew := g.MaxNew
	if maxNew <= 0 {
		maxNew = 16
	}
	bs := g.BatchSize
	if bs <= 0 {
		bs = 64
	}
	out := make([]string, 0, len(examples))
	for start := 0; start < len(examples); start += bs {
		batch := examples[start:min(start+bs, len(examples))]
		prompts, images, err := g.Source.Prompts(batch, maxNew)
		if err != nil {
			return nil, fmt.Errorf("generating answers: %w", err)
		}
		var gen [][]int32
		err = catch.Error(func() error {
			var err error
			gen, err = model.Generate(g.Backend, g.Ctx, g.Base, g.Hook, prompts, images, maxNew)
			return err
		})
		if images != nil {
			_ = images.FinalizeAll()
		}
		if err != nil {
			return nil, fmt.Errorf("generating answers for examples %d to %d: %w", start, start+len(batch)-1, err)
		}
		for _, ids := range gen {
			out = append(out, g.Tokenizer.Decode(untilEOS(ids)))
		}
	}
	return out, nil
}

// Score generates answers for examples and scores them with the task's metric (exact-match
// accuracy for classification, CIDEr-D for captioning). It returns the metric's name, its
// value and the answers.
func (g Generator) Score(task *tasks.Task, examples []tasks.Example) (metric string, score float64, answers []string, err error) {
	if len(examples) == 0 {
		return task.Metric, 0, nil, fmt.Errorf("scoring %s: no examples", task.Name)
	}
	if g.MaxNew <= 0 && g.Tokenizer != nil && g.Source != nil {
		g.MaxNew = min(AnswerBudget(task, g.Tokenizer), g.Source.MaxNew())
	}
	answers, err = g.Answers(examples)
	if err != nil {
		return task.Metric, 0, nil, fmt.Errorf("scoring %s: %w", task.Name, err)
	}
	score, err = task.Score(examples, answers)
	if err != nil {
		return task.Metric, 0, answers, fmt.Errorf("scoring %s: %w", task.Name, err)
	}
	return task.Metric, score, answers, nil
}

// AnswerBudget is the number of tokens the longest expected answer of task needs, plus
// [EOS]: over the class names, or over (at most 2000) training references for captioning.
// It is what Score generates when MaxNew is 0.
func AnswerBudget(task *tasks.Task, tok *tokenizer.Tokenizer) int {
	longest := 1
	for _, c := range task.Classes {
		longest = max(longest, len(tok.Encode(c)))
	}
	if len(task.Classes) == 0 {
		for i, e := range task.Train {
			if i == 2000 {
				break
			}
			for _, r := range e.References {
				longest = max(longest, len(tok.Encode(r)))
			}
		}
	}
	return longest + 1
}

// untilEOS cuts generated ids at the first end-of-sequence token (Generate stops there only
// when the base's Config.EndToken is set).
func untilEOS(ids []int32) []int32 {
	for i, id := range ids {
		if id == tokenizer.EosID {
			return ids[:i]
		}
	}
	return ids
}
