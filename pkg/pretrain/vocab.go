package pretrain

import (
	"fmt"
	"sort"
	"strings"

	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// VocabSize is the size of the shared vocabulary, special tokens included. At 2,048 the
// text embedding and the LM head of a width-64 model hold 262K weights, about half of each
// base: a larger vocabulary would make them dominate, a smaller one would split common
// words.
const VocabSize = 2048

// MaxAlphabet is the number of distinct characters the vocabulary keeps (the rarer ones encode
// as [UNK]). Each character takes two ids (word-initial and "##" continuation), so the
// tokenizer's default of 256, mostly spent on the symbols of spam mails, would use a quarter of
// the vocabulary.
const MaxAlphabet = 96

// A task string (instruction, answer or caption) found in n training examples enters the
// tokenizer corpus min(n·repeatsPerExample, maxRepeats) times. The text corpora are far larger
// than the task strings, so without this weighting the words models are asked and answer
// with ("describe", "clothing", "footwear") would be split into pieces, while the cap keeps
// the ~1,500 one-off emoji names from taking over the vocabulary.
const (
	repeatsPerExample = 20
	maxRepeats        = 2000
)

// ImageTasks are the multimodal tasks of pkg/tasks (VQA and captioning) whose instructions,
// answers and training captions join the tokenizer corpus.
var ImageTasks = []string{"mnist-digit", "mnist-parity", "mnist-large", "fashion-item", "fashion-footwear",
	"emoji-category", "mnist-caption", "fashion-caption", "emoji-caption"}

// VocabTexts is the tokenizer's training corpus: the text base's training documents, then
// the prompts and answers of the training splits of TextTasks (instructions and class names)
// and ImageTasks (questions, answers, captions), each repeated as the constants above say.
// Held-out texts (validation and test splits) never enter it.
func VocabTexts(text *TextCorpus, fast bool) ([]string, error) {
	texts := make([]string, 0, len(text.Train))
	for _, d := range text.Train {
		texts = append(texts, d.Text)
	}
	counts := map[string]int{}
	for _, name := range TextTasks {
		t, err := tasks.Load(name, tasks.Options{Fast: fast})
		if err != nil {
			return nil, err
		}
		prefix, err := instructionPrefix(t)
		if err != nil {
			return nil, err
		}
		counts[strings.TrimSpace(prefix)] += len(t.Train)
		for _, e := range t.Train {
			counts[e.Target]++
		}
	}
	for _, name := range ImageTasks {
		t, err := tasks.Load(name, tasks.Options{Fast: fast})
		if err != nil {
			return nil, err
		}
		for _, e := range t.Train {
			counts[e.Prompt]++
			for _, r := range e.References {
				counts[r]++
			}
		}
	}
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // map order must not reach the tokenizer
	for _, k := range keys {
		// One text per string: the pre-tokenizer splits on spaces, so the words and their
		// counts are the same as with separate texts, at a fraction of the cost.
		texts = append(texts, strings.Repeat(k+" ", min(counts[k]*repeatsPerExample, maxRepeats)))
	}
	return texts, nil
}

// TrainTokenizer learns the shared vocabulary from VocabTexts.
func TrainTokenizer(text *TextCorpus, fast bool) (*tokenizer.Tokenizer, error) {
	texts, err := VocabTexts(text, fast)
	if err != nil {
		return nil, err
	}
	var tok *tokenizer.Tokenizer
	for try := 1; ; try++ {
		tok, err = trainOnce(texts)
		if err == nil || try == 3 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("train the shared tokenizer: %w", err)
	}
	return tok, nil
}

// trainOnce runs tokenizer.Train, turning a panic into an error (catch.Error).
//
// Why: github.com/sugarme/tokenizer v0.3.0's BERT pre-tokenizer panics now and then ("slice
// bounds out of range" in NormalizedString.RangeOriginal) on input it handles fine on the
// next call; it happened once in the ~20 runs over this corpus during development. A rerun
// gives the same vocabulary, since a successful Train depends only on the texts.
func trainOnce(texts []string) (tok *tokenizer.Tokenizer, err error) {
	err = catch.Error(func() error {
		tok, err = tokenizer.Train(texts, tokenizer.TrainOptions{VocabSize: VocabSize, MaxAlphabet: MaxAlphabet})
		return err
	})
	return tok, err
}
