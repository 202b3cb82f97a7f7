package pretrain

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/dataset"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// TextTasks are the text classification tasks whose texts the text base reads. Only their
// training splits are pretrained on: the validation and test texts stay unseen, so perplexity
// on them is held out and fine-tuning results on these tasks are not inflated by memorised
// test reviews.
var TextTasks = []string{"imdb", "spam", "fortune-topic"}

// Doc is one pretraining document: a text and where it comes from.
type Doc struct {
	Source string // task or data set name
	Text   string
}

// taskContents returns the texts of a text task's split without the task's instruction.
//
// pkg/tasks builds each prompt as "<instruction> <content>" with the same instruction for
// every example; a raw language model should read only the content, so the instruction (the
// common prefix, cut after its question mark) is removed here.
func taskContents(t *tasks.Task, split string) ([]string, error) {
	ex, err := t.Split(split)
	if err != nil {
		return nil, err
	}
	prefix, err := instructionPrefix(t)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ex))
	for i, e := range ex {
		s, ok := strings.CutPrefix(e.Prompt, prefix)
		if !ok {
			return nil, fmt.Errorf("task %s: prompt %d does not start with the instruction %q", t.Name, i, prefix)
		}
		out[i] = s
	}
	return out, nil
}

// instructionPrefix finds the instruction shared by every prompt of a text task: the longest
// common prefix of its training prompts, up to and including its last "? ".
func instructionPrefix(t *tasks.Task) (string, error) {
	if len(t.Train) == 0 {
		return "", fmt.Errorf("task %s has no training examples", t.Name)
	}
	p := t.Train[0].Prompt
	for _, e := range t.Train[1:min(len(t.Train), 2000)] {
		n := 0
		for n < len(p) && n < len(e.Prompt) && p[n] == e.Prompt[n] {
			n++
		}
		p = p[:n]
	}
	i := strings.LastIndex(p, "? ")
	if i < 0 {
		return "", fmt.Errorf("task %s: cannot find the instruction (a question ending in \"? \") shared by its prompts", t.Name)
	}
	return p[:i+2], nil
}

// TextCorpus holds the text base's documents: training documents and held-out documents per
// source.
type TextCorpus struct {
	Train   []Doc
	HeldOut map[string][]Doc // by source: the tasks' test texts
	// Validation documents (the tasks' validation texts) are evaluated during training.
	Validation []Doc
}

// TextOptions size the text corpus.
type TextOptions struct {
	// PerTask caps the training documents taken from each text task (a seeded sample);
	// 0 takes all of them.
	PerTask int
	// HeldOutPerTask caps the test documents per task scored after training, and
	// ValidationPerTask the validation documents evaluated during training.
	HeldOutPerTask, ValidationPerTask int
	// Seed chooses the samples.
	Seed uint64
	// Fast loads the tasks' fast subsets (tests).
	Fast bool
}

// LoadText builds the text corpus: the training texts of TextTasks (instructions removed)
// and the fortune quotes. Every validation and test text of the tasks is held out, and so is
// any training text equal to one of them (the SpamAssassin corpus holds the same mail more
// than once, so a split by message still shares texts across splits).
func LoadText(o TextOptions) (*TextCorpus, error) {
	c := &TextCorpus{HeldOut: map[string][]Doc{}}
	heldOut := map[string]bool{} // normalized validation and test texts
	train := map[string][]string{}
	for _, name := range TextTasks {
		t, err := tasks.Load(name, tasks.Options{Fast: o.Fast})
		if err != nil {
			return nil, err
		}
		if train[name], err = taskContents(t, "train"); err != nil {
			return nil, err
		}
		for _, split := range []string{"validation", "test"} {
			texts, err := taskContents(t, split)
			if err != nil {
				return nil, err
			}
			for _, s := range texts {
				heldOut[normSpace(s)] = true
			}
			keep := max(o.HeldOutPerTask, 1)
			if split == "validation" {
				keep = max(o.ValidationPerTask, 1)
			}
			for _, s := range texts[:min(len(texts), keep)] {
				if split == "test" {
					c.HeldOut[name] = append(c.HeldOut[name], Doc{name, s})
				} else {
					c.Validation = append(c.Validation, Doc{name, s})
				}
			}
		}
	}
	for _, name := range TextTasks {
		if name == "fortune-topic" { // fortunes come in whole below
			continue
		}
		var texts []string
		for _, s := range train[name] {
			if !heldOut[normSpace(s)] {
				texts = append(texts, s)
			}
		}
		for _, s := range sample(texts, o.PerTask, o.Seed) {
			c.Train = append(c.Train, Doc{name, s})
		}
	}
	quotes, err := dataset.Fortunes()
	if err != nil {
		return nil, err
	}
	var fortunes []string
	for _, q := range quotes {
		if s := normSpace(q.Text); s != "" && !heldOut[s] {
			fortunes = append(fortunes, s)
		}
	}
	if o.Fast {
		fortunes = sample(fortunes, 256, o.Seed)
	}
	for _, s := range fortunes {
		c.Train = append(c.Train, Doc{"fortunes", s})
	}
	return c, nil
}

// normSpace joins the fields of s with single spaces (how pkg/tasks writes quotes).
func normSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// sample returns n of the items chosen with seed, in their original order (all when n is 0
// or at least len(items)).
func sample(items []string, n int, seed uint64) []string {
	if n <= 0 || n >= len(items) {
		return items
	}
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	keep := make([]bool, len(items))
	for _, i := range r.Perm(len(items))[:n] {
		keep[i] = true
	}
	out := make([]string, 0, n)
	for i, s := range items {
		if keep[i] {
			out = append(out, s)
		}
	}
	return out
}

// Windows cuts documents into language-modelling examples of T tokens: each document
// becomes [BOS] tokens [EOS], cut into consecutive windows of T+1 tokens that overlap by one
// (window k's last token is window k+1's first), so every token is predicted exactly once.
// Tokens is the window's first T tokens and Targets its last T (0-padded; 0 targets do not
// count). maxWindows > 0 keeps at most that many windows per document (the first ones).
// It returns the windows and the number of target tokens.
func Windows(tok *tokenizer.Tokenizer, docs []Doc, T, maxWindows int) (*WindowSet, error) {
	if len(docs) == 0 {
		return nil, fmt.Errorf("language-model windows: no documents")
	}
	texts := make([]string, len(docs))
	for i, d := range docs {
		texts[i] = d.Text
	}
	w := &WindowSet{T: T}
	for i, ids := range tok.EncodeBatch(texts) {
		if len(ids) == 1 && ids[0] == tokenizer.UnkID && len(texts[i]) > 8 {
			// The tokenizer library occasionally panics on text it handles on a retry
			// (see trainOnce); Encode then returns a lone [UNK].
			ids = tok.Encode(texts[i])
		}
		seq := make([]int32, 0, len(ids)+2)
		seq = append(seq, tokenizer.BosID)
		seq = append(seq, ids...)
		seq = append(seq, tokenizer.EosID)
		for k, start := 0, 0; start+1 < len(seq); k, start = k+1, start+T {
			if maxWindows > 0 && k >= maxWindows {
				break
			}
			win := seq[start:min(len(seq), start+T+1)]
			in := make([]int32, T)
			out := make([]int32, T)
			copy(in, win[:len(win)-1])
			copy(out, win[1:])
			w.tokens = append(w.tokens, in...)
			w.targets = append(w.targets, out...)
			w.Targets += len(win) - 1
			w.N++
		}
	}
	return w, nil
}

// WindowSet is a set of language-modelling windows (see Windows).
type WindowSet struct {
	T, N    int // window length and count
	Targets int // number of target tokens
	tokens  []int32
	targets []int32
}

// Batch returns windows [from, to) as one batch.
func (w *WindowSet) Batch(from, to int) trainer.Batch {
	return trainer.Batch{
		Tokens:  tensors.FromFlatDataAndDimensions(w.tokens[from*w.T:to*w.T], to-from, w.T),
		Targets: tensors.FromFlatDataAndDimensions(w.targets[from*w.T:to*w.T], to-from, w.T),
	}
}

// All returns every window as one batch.
func (w *WindowSet) All() trainer.Batch { return w.Batch(0, w.N) }

// Batches returns the windows in batches of at most size.
func (w *WindowSet) Batches(size int) []trainer.Batch {
	var out []trainer.Batch
	for from := 0; from < w.N; from += size {
		out = append(out, w.Batch(from, min(w.N, from+size)))
	}
	return out
}
