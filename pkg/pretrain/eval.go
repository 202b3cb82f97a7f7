package pretrain

import (
	"fmt"
	"slices"
	"sort"

	"github.com/gomlx/compute"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/metrics"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// evalBatch is the batch size of held-out evaluations.
const evalBatch = 32

// Perplexity returns exp(mean cross-entropy per target token) of the base in ctx over the
// windows, without changing any weight.
func Perplexity(b compute.Backend, scope *mlmodel.Scope, c model.Config, w *WindowSet) (float64, error) {
	tr, err := trainer.New(b, scope, c, nil, trainer.Config{Steps: 1, BatchSize: evalBatch, LR: 1e-3})
	if err != nil {
		return 0, err
	}
	m, err := tr.Evaluate(w.Batches(evalBatch))
	if err != nil {
		return 0, err
	}
	return m.Perplexity, nil
}

// evalText scores a text base: perplexity on each source's held-out documents (the first
// maxWindows windows of each), and a few greedy continuations.
func evalText(b compute.Backend, scope *mlmodel.Scope, c model.Config, tok *tokenizer.Tokenizer, corpus *TextCorpus, T int) ([]bases.Score, []bases.Sample, error) {
	const maxWindows = 4
	sources := make([]string, 0, len(corpus.HeldOut))
	for s := range corpus.HeldOut {
		sources = append(sources, s)
	}
	sort.Strings(sources)
	var scores []bases.Score
	var all []Doc
	for _, s := range sources {
		docs := corpus.HeldOut[s]
		all = append(all, docs...)
		w, err := Windows(tok, docs, T, maxWindows)
		if err != nil {
			return nil, nil, err
		}
		ppl, err := Perplexity(b, scope, c, w)
		if err != nil {
			return nil, nil, fmt.Errorf("held-out perplexity on %s: %w", s, err)
		}
		scores = append(scores, bases.Score{Task: s, Split: "test", Metric: "perplexity", Value: ppl, N: len(docs)})
	}
	w, err := Windows(tok, all, T, maxWindows)
	if err != nil {
		return nil, nil, err
	}
	ppl, err := Perplexity(b, scope, c, w)
	if err != nil {
		return nil, nil, err
	}
	scores = append(scores, bases.Score{Task: "all", Split: "test", Metric: "perplexity", Value: ppl, N: len(all)})

	// Continuations of the first words of one held-out document per source.
	words := min(12, c.MaxLen/2-1)
	maxNew := min(20, c.MaxLen-words-1)
	var prompts [][]int32
	var samples []bases.Sample
	for _, s := range sources {
		d := corpus.HeldOut[s][0]
		ids := tok.Encode(d.Text)
		ids = ids[:min(len(ids), words)]
		prompts = append(prompts, append([]int32{tokenizer.BosID}, ids...))
		samples = append(samples, bases.Sample{Task: s, Prompt: tok.Decode(ids)})
	}
	out, err := model.Generate(b, scope, c, nil, prompts, nil, maxNew)
	if err != nil {
		return nil, nil, err
	}
	for i := range samples {
		samples[i].Output = tok.Decode(out[i])
	}
	return scores, samples, nil
}

// TaskScores generates answers with the base in ctx to the first n test examples of each
// named task and scores them with the task's metric (exact-match accuracy or CIDEr-D), adding
// BLEU-4 for captioning. seen says which tasks were pretrained on. It also returns the first
// example of each task with the base's answer.
func TaskScores(b compute.Backend, scope *mlmodel.Scope, c model.Config, tok *tokenizer.Tokenizer, names, seen []string, n, seqLen int, fast bool) ([]bases.Score, []bases.Sample, error) {
	var scores []bases.Score
	var samples []bases.Sample
	for _, name := range names {
		t, err := tasks.Load(name, tasks.Options{Fast: fast, ImageSize: c.ImageSize, Channels: c.Channels})
		if err != nil {
			return nil, nil, err
		}
		ex := t.Test[:min(len(t.Test), n)]
		preds, err := Answers(b, scope, c, tok, t, ex, seqLen)
		if err != nil {
			return nil, nil, fmt.Errorf("task %s: %w", name, err)
		}
		score, err := t.Score(ex, preds)
		if err != nil {
			return nil, nil, err
		}
		isSeen := slices.Contains(seen, name)
		scores = append(scores, bases.Score{Task: name, Split: "test", Metric: t.Metric, Value: score, N: len(ex), Seen: isSeen})
		if t.Kind == tasks.Captioning {
			refs := make([][]string, len(ex))
			for i, e := range ex {
				refs[i] = e.References
			}
			bleu, err := metrics.BLEU4(preds, refs)
			if err != nil {
				return nil, nil, err
			}
			scores = append(scores, bases.Score{Task: name, Split: "test", Metric: "bleu-4", Value: bleu, N: len(ex), Seen: isSeen})
		}
		samples = append(samples, bases.Sample{Task: name, Prompt: ex[0].Prompt, Target: ex[0].Target, Output: preds[0]})
	}
	return scores, samples, nil
}

// Answers generates the base's answers to examples of task t, greedily: "[BOS] prompt [SEP]"
// (with the image) continued until [EOS] or an answer budget (the longest class name, or 12
// tokens for captions). seqLen is the sequence length the answers were trained with.
func Answers(b compute.Backend, scope *mlmodel.Scope, c model.Config, tok *tokenizer.Tokenizer, t *tasks.Task, ex []tasks.Example, seqLen int) ([]string, error) {
	maxNew := 12
	if t.Kind == tasks.Classification {
		maxNew = 0
		for _, cl := range t.Classes {
			maxNew = max(maxNew, len(tok.Encode(cl))+1)
		}
	}
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: seqLen, Objective: trainer.LanguageModel}, t)
	if err != nil {
		return nil, err
	}
	preds := make([]string, 0, len(ex))
	const chunk = 128
	for from := 0; from < len(ex); from += chunk {
		part := ex[from:min(len(ex), from+chunk)]
		prompts, images, err := src.Prompts(part, maxNew)
		if err != nil {
			return nil, err
		}
		out, err := model.Generate(b, scope, c, nil, prompts, images, maxNew)
		if err != nil {
			return nil, err
		}
		for _, ids := range out {
			preds = append(preds, tok.Decode(ids))
		}
	}
	return preds, nil
}
