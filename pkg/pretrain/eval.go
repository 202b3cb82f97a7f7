package pretrain

import (
	"fmt"
	"slices"
	"sort"

	"github.com/gomlx/compute"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/eval"
	"github.com/peftlab/peftlab/pkg/metrics"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// evalBatch is the batch size of held-out evaluations; evalGenerateBatch how many held-out
// answers generate at once (only speed depends on it).
const (
	evalBatch         = 32
	evalGenerateBatch = 128
)

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
// BLEU-4 for captioning; eval.Generator generates and scores, as for adapted models. seqLen is
// the sequence length the answers were trained with, seen says which tasks were pretrained
// on. It also returns the first example of each task with the base's answer.
func TaskScores(b compute.Backend, scope *mlmodel.Scope, c model.Config, tok *tokenizer.Tokenizer, names, seen []string, n, seqLen int, fast bool) ([]bases.Score, []bases.Sample, error) {
	var scores []bases.Score
	var samples []bases.Sample
	for _, name := range names {
		t, err := tasks.Load(name, tasks.Options{Fast: fast, ImageSize: c.ImageSize, Channels: c.Channels})
		if err != nil {
			return nil, nil, err
		}
		ex := t.Test[:min(len(t.Test), n)]
		src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: seqLen, Objective: trainer.LanguageModel}, t)
		if err != nil {
			return nil, nil, fmt.Errorf("task %s: %w", name, err)
		}
		g := eval.Generator{Backend: b, Ctx: scope, Base: c, Tokenizer: tok, Source: src, BatchSize: evalGenerateBatch}
		_, score, preds, err := g.Score(t, ex)
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
