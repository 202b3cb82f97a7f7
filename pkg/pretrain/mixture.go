package pretrain

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// MixtureOptions size a multimodal pretraining mixture.
type MixtureOptions struct {
	// PerTask is the number of training examples each task contributes: smaller training
	// splits are repeated (emoji has ~1,500 images, MNIST 55,000), larger ones cut, so every
	// task weighs the same.
	PerTask int
	// ValidationPerTask caps each task's validation examples (evaluated during training).
	ValidationPerTask int
	// SeqLen is the token length of the training sequences.
	SeqLen int
	// Fast loads the tasks' fast subsets (tests).
	Fast bool
}

// LoadMixture loads the named tasks of pkg/tasks (default 32x32 RGB images) and returns a
// language-modelling source over their balanced training splits: every example is
// "[BOS] instruction [SEP] answer [EOS]" with its image, and only the answer is a target.
func LoadMixture(tok *tokenizer.Tokenizer, names []string, o MixtureOptions) (*tasks.Source, []*tasks.Task, error) {
	if len(names) == 0 {
		return nil, nil, fmt.Errorf("pretraining mixture: no tasks")
	}
	var ts []*tasks.Task
	for _, name := range names {
		t, err := tasks.Load(name, tasks.Options{Fast: o.Fast})
		if err != nil {
			return nil, nil, err
		}
		if !t.Multimodal() {
			return nil, nil, fmt.Errorf("pretraining mixture: task %s has no images", name)
		}
		b := *t // the loaded task stays as it is; the mixture gets its own slices
		b.Train = balance(t.Train, o.PerTask)
		if o.ValidationPerTask > 0 {
			b.Validation = t.Validation[:min(len(t.Validation), o.ValidationPerTask)]
		}
		ts = append(ts, &b)
	}
	src, err := tasks.NewSource(tok, tasks.BatchOptions{MaxLen: o.SeqLen, Objective: trainer.LanguageModel}, ts...)
	if err != nil {
		return nil, nil, err
	}
	return src, ts, nil
}

// balance returns exactly n examples: ex repeated as many whole times as fit, then its first
// examples (ex is already in a seeded random order, so these are a random sample). n <= 0
// keeps ex as it is.
func balance(ex []tasks.Example, n int) []tasks.Example {
	if n <= 0 || len(ex) == 0 {
		return ex
	}
	out := make([]tasks.Example, 0, n)
	for len(out) < n {
		out = append(out, ex[:min(len(ex), n-len(out))]...)
	}
	return out
}
