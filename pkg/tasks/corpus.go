package tasks

import (
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/metrics"
)

// containsWords reports whether answer equals one of refs, word for word.
func containsWords(refs []string, answer string) bool {
	w := strings.Join(metrics.Words(answer), " ")
	return slices.ContainsFunc(refs, func(r string) bool { return strings.Join(metrics.Words(r), " ") == w })
}

// CorpusOptions bound the text Corpus collects.
type CorpusOptions struct {
	// PerTask caps the training examples taken from each task (default 4000).
	PerTask int
}

// Corpus collects the text of the given tasks' training splits (prompts, answers and
// references; never validation or test text) for training a tokenizer, so that every prompt
// word and answer of the tasks is in the vocabulary. A text repeated across examples (a VQA
// question asked of 55,000 images) is kept at most 50 times, so that it still weighs in the
// merge counts without drowning the natural text.
func Corpus(tasks []*Task, opts CorpusOptions) []string {
	if opts.PerTask == 0 {
		opts.PerTask = 4000
	}
	seen := map[string]int{}
	var out []string
	add := func(s string) {
		if s == "" || seen[s] >= 50 {
			return
		}
		seen[s]++
		out = append(out, s)
	}
	for _, t := range tasks {
		for _, c := range t.Classes {
			add(c)
		}
		for _, e := range t.Train[:min(len(t.Train), opts.PerTask)] {
			add(e.Prompt)
			add(e.Target)
			for _, r := range e.References[min(1, len(e.References)):] {
				add(r)
			}
		}
	}
	return out
}
