package pretrain

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/dataset/datatest"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

func TestTextCorpusHoldsOutTestTexts(t *testing.T) {
	datatest.Require(t, "imdb", "spam", "fortunes")
	c, err := LoadText(TextOptions{Fast: true, HeldOutPerTask: 1000, ValidationPerTask: 1000})
	if err != nil {
		t.Fatal(err)
	}
	train := map[string]bool{}
	for _, d := range c.Train {
		if strings.HasPrefix(d.Text, "is this movie review") || strings.HasPrefix(d.Text, "is this email") {
			t.Fatalf("%s document still carries its task instruction: %.60q", d.Source, d.Text)
		}
		train[normSpace(d.Text)] = true
	}
	for _, name := range TextTasks {
		if len(c.HeldOut[name]) == 0 {
			t.Fatalf("no held-out documents for %s", name)
		}
		for _, d := range c.HeldOut[name] {
			if train[normSpace(d.Text)] {
				t.Fatalf("held-out %s text is in the training corpus: %.60q", name, d.Text)
			}
		}
	}
	for _, d := range c.Validation {
		if train[normSpace(d.Text)] {
			t.Fatalf("validation text is in the training corpus: %.60q", d.Text)
		}
	}
}

// tinyRun pretrains a miniature of recipe name for a few steps on the fast subsets.
func tinyRun(t *testing.T, name, out string, tok *tokenizer.Tokenizer) *bases.Report {
	t.Helper()
	r, err := RecipeFor(name)
	if err != nil {
		t.Fatal(err)
	}
	r.Model.Width, r.Model.Heads, r.Model.Blocks, r.Model.MLPDim = 16, 2, 1, 32
	r.Train.BatchSize, r.Train.EvalEvery = 4, 0
	if !r.Multimodal() {
		r.Model.MaxLen, r.SeqLen = 16, 16
	}
	b, err := backend.New()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(b, r, Options{Out: out, Steps: 3, Fast: true, EvalExamples: 4, Tokenizer: tok, Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// A run is reproducible: the same recipe, data and seed give bit-identical weights. The
// checkpoint it writes verifies, and its report has the held-out perplexities.
func TestTextRunIsDeterministic(t *testing.T) {
	datatest.Require(t, "imdb", "spam", "fortunes")
	tok := toyTokenizer(t)
	dir := t.TempDir()
	a := tinyRun(t, Text, filepath.Join(dir, "a"), tok)
	b := tinyRun(t, Text, filepath.Join(dir, "b"), tok)
	if a.BaseHash != b.BaseHash {
		t.Fatalf("two identical runs gave different weights: %s vs %s", a.BaseHash, b.BaseHash)
	}
	if _, err := bases.LoadDir(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	for _, task := range append(slices.Clone(TextTasks), "all") {
		s, ok := a.Score(task, "perplexity")
		if !ok || !(s.Value > 1) {
			t.Fatalf("held-out perplexity of %s: %+v (found %v)", task, s, ok)
		}
	}
	if len(a.Training.Steps) != 3 || a.Data.SeenExamples != 12 {
		t.Fatalf("record has %d steps, %d examples seen; want 3 and 12", len(a.Training.Steps), a.Data.SeenExamples)
	}
}

// A vision-language run scores every image task and marks which ones it pretrained on.
func TestVLMRunScoresSeenAndHeldOutTasks(t *testing.T) {
	datatest.Require(t, "mnist", "fashion-mnist", "emoji")
	dir := filepath.Join(t.TempDir(), "raw")
	rep := tinyRun(t, VLMRaw, dir, toyTokenizer(t))
	for _, task := range ImageTasks {
		if slices.Contains(InstructTasks, task) && !slices.Contains(RawTasks, task) {
			continue // the raw base is not scored on the instructed base's training tasks
		}
		found := false
		for _, s := range rep.HeldOut {
			if s.Task == task {
				found = true
				if s.Seen != slices.Contains(RawTasks, task) {
					t.Fatalf("%s marked seen=%v", task, s.Seen)
				}
			}
		}
		if !found {
			t.Fatalf("no held-out score for %s", task)
		}
	}
	if _, ok := rep.Score("emoji-caption", "bleu-4"); !ok {
		t.Fatal("captioning must also report BLEU-4")
	}
	if _, err := bases.LoadDir(dir); err != nil {
		t.Fatal(err)
	}
}
