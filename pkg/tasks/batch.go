package tasks

import (
	"fmt"
	"sync"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// BatchOptions choose how examples become batches.
type BatchOptions struct {
	// MaxLen is T, the token length of every batch (default 128). Prompts are cut to fit.
	MaxLen int
	// Objective is trainer.Classification (Tokens + Labels) or trainer.LanguageModel (prompt
	// [SEP] answer [EOS], with Targets on the answer). Empty: classification for classification
	// tasks, language modelling for captioning and for mixtures of several tasks.
	Objective trainer.Objective
	// EvalSplit is the split EvalBatches returns: "validation" (default) or "test".
	EvalSplit string
}

// Source serves a task's (or several tasks') examples as trainer batches; it implements
// trainer.Source. Token ids are computed on first use and cached; images are rendered per
// batch. It is safe for concurrent use.
//
// Layouts, all right-padded with 0 to MaxLen:
//
//	classification: Tokens = [BOS] prompt, Labels = class
//	language model: Tokens = [BOS] prompt [SEP] answer [EOS], Targets[t] = Tokens[t+1] from
//	                the [SEP] position on (the answer and [EOS]), 0 elsewhere
type Source struct {
	tok                 *tokenizer.Tokenizer
	opts                BatchOptions
	train, eval         []Example
	imageSize, channels int
	classes             int

	mu       sync.Mutex
	trainEnc []*encoded
	evalEnc  []*encoded
	perms    map[[2]int64][]int
}

type encoded struct{ prompt, answer []int32 }

// NewSource makes a Source over one task, or a mixture of several (language modelling only;
// all text-only or all with images of the same size). Examples of a mixture are drawn
// uniformly from the union of the tasks' training splits.
func NewSource(tok *tokenizer.Tokenizer, opts BatchOptions, tasks ...*Task) (*Source, error) {
	if tok == nil {
		return nil, fmt.Errorf("tasks: NewSource needs a tokenizer")
	}
	if len(tasks) == 0 {
		return nil, fmt.Errorf("tasks: NewSource needs at least one task")
	}
	if opts.MaxLen == 0 {
		opts.MaxLen = 128
	}
	if opts.MaxLen < 8 {
		return nil, fmt.Errorf("tasks: MaxLen %d is too short (at least 8)", opts.MaxLen)
	}
	if opts.EvalSplit == "" {
		opts.EvalSplit = "validation"
	}
	if opts.Objective == "" {
		opts.Objective = trainer.LanguageModel
		if len(tasks) == 1 && tasks[0].Kind == Classification {
			opts.Objective = trainer.Classification
		}
	}
	s := &Source{tok: tok, opts: opts, imageSize: tasks[0].ImageSize, channels: tasks[0].Channels}
	switch opts.Objective {
	case trainer.Classification:
		if len(tasks) != 1 || tasks[0].Kind != Classification {
			return nil, fmt.Errorf("tasks: the classification objective needs exactly one classification task; use %q for captioning or mixtures", trainer.LanguageModel)
		}
		s.classes = len(tasks[0].Classes)
	case trainer.LanguageModel:
	default:
		return nil, fmt.Errorf("tasks: unknown objective %q (want %q or %q)", opts.Objective, trainer.Classification, trainer.LanguageModel)
	}
	for _, t := range tasks {
		if t.ImageSize != s.imageSize || t.Channels != s.channels {
			return nil, fmt.Errorf("tasks: cannot mix %s (images %dx%dx%d) with %s (images %dx%dx%d)",
				t.Name, t.ImageSize, t.ImageSize, t.Channels, tasks[0].Name, s.imageSize, s.imageSize, s.channels)
		}
		ev, err := t.Split(opts.EvalSplit)
		if err != nil {
			return nil, err
		}
		s.train = append(s.train, t.Train...)
		s.eval = append(s.eval, ev...)
	}
	if len(s.train) == 0 {
		return nil, fmt.Errorf("tasks: no training examples")
	}
	s.trainEnc = make([]*encoded, len(s.train))
	s.evalEnc = make([]*encoded, len(s.eval))
	return s, nil
}

// Len is the number of training examples.
func (s *Source) Len() int { return len(s.train) }

// Classes is the number of classes (0 for language modelling).
func (s *Source) Classes() int { return s.classes }

// TrainBatch implements trainer.Source: the examples of step `step` in a seeded order that
// visits every training example once per epoch; batches run across epoch boundaries.
func (s *Source) TrainBatch(step, size int, seed int64) (trainer.Batch, error) {
	if step < 0 || size <= 0 {
		return trainer.Batch{}, fmt.Errorf("TrainBatch(step=%d, size=%d): want step >= 0 and size > 0", step, size)
	}
	n := len(s.train)
	rows := make([]int, size)
	for i := range rows {
		k := step*size + i
		rows[i] = s.perm(seed, k/n)[k%n]
	}
	return s.batch(s.train, s.trainEnc, rows)
}

func (s *Source) perm(seed int64, epoch int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := [2]int64{seed, int64(epoch)}
	if p, ok := s.perms[key]; ok {
		return p
	}
	if s.perms == nil || len(s.perms) > 4 {
		s.perms = map[[2]int64][]int{}
	}
	p := permutation(len(s.train), uint64(seed)*0x100000001b3+uint64(epoch))
	s.perms[key] = p
	return p
}

// EvalBatches implements trainer.Source: the evaluation split in order.
func (s *Source) EvalBatches(size int) ([]trainer.Batch, error) {
	if size <= 0 {
		return nil, fmt.Errorf("EvalBatches(size=%d): want size > 0", size)
	}
	var out []trainer.Batch
	for start := 0; start < len(s.eval); start += size {
		rows := make([]int, 0, size)
		for i := start; i < min(start+size, len(s.eval)); i++ {
			rows = append(rows, i)
		}
		b, err := s.batch(s.eval, s.evalEnc, rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Batch turns any examples (e.g. a task's test split) into one batch with the Source's layout.
func (s *Source) Batch(examples []Example) (trainer.Batch, error) {
	rows := make([]int, len(examples))
	for i := range rows {
		rows[i] = i
	}
	return s.batch(examples, make([]*encoded, len(examples)), rows)
}

func (s *Source) encode(ex []Example, cache []*encoded, i int) *encoded {
	s.mu.Lock()
	e := cache[i]
	s.mu.Unlock()
	if e != nil {
		return e
	}
	// Characters beyond ~8 per token cannot reach the model: do not pay for tokenizing them.
	e = &encoded{
		prompt: s.tok.Encode(truncateText(ex[i].Prompt, 8*s.opts.MaxLen)),
		answer: s.tok.Encode(ex[i].Target),
	}
	s.mu.Lock()
	cache[i] = e
	s.mu.Unlock()
	return e
}

func (s *Source) batch(ex []Example, cache []*encoded, rows []int) (trainer.Batch, error) {
	T := s.opts.MaxLen
	B := len(rows)
	tokens := make([]int32, B*T)
	var labels, targets []int32
	lm := s.opts.Objective == trainer.LanguageModel
	if lm {
		targets = make([]int32, B*T)
	} else {
		labels = make([]int32, B)
	}
	var images []float32
	if s.imageSize > 0 {
		images = make([]float32, 0, B*s.imageSize*s.imageSize*s.channels)
	}
	for b, i := range rows {
		e := s.encode(ex, cache, i)
		row := tokens[b*T : (b+1)*T]
		if lm {
			seq, sep := lmSequence(e, T)
			copy(row, seq)
			for t := sep; t+1 < len(seq); t++ {
				targets[b*T+t] = seq[t+1]
			}
		} else {
			row[0] = tokenizer.BosID
			copy(row[1:], e.prompt)
			if ex[i].Label < 0 || ex[i].Label >= s.classes {
				return trainer.Batch{}, fmt.Errorf("example %d has label %d outside [0, %d)", i, ex[i].Label, s.classes)
			}
			labels[b] = int32(ex[i].Label)
		}
		if s.imageSize > 0 {
			px, err := ex[i].Image()
			if err == nil {
				err = checkImage(px, s.imageSize, s.channels)
			}
			if err != nil {
				return trainer.Batch{}, fmt.Errorf("example %d: %w", i, err)
			}
			images = append(images, px...)
		}
	}
	out := trainer.Batch{Tokens: tensors.FromFlatDataAndDimensions(tokens, B, T)}
	if lm {
		out.Targets = tensors.FromFlatDataAndDimensions(targets, B, T)
	} else {
		out.Labels = tensors.FromFlatDataAndDimensions(labels, B)
	}
	if images != nil {
		out.Images = tensors.FromFlatDataAndDimensions(images, B, s.imageSize, s.imageSize, s.channels)
	}
	return out, nil
}

// lmSequence lays out [BOS] prompt [SEP] answer [EOS] in at most T tokens, cutting the
// answer to T/2 and then the prompt; it returns the sequence and the [SEP] position.
func lmSequence(e *encoded, T int) ([]int32, int) {
	answer := e.answer[:min(len(e.answer), T/2)]
	room := T - 3 - len(answer)
	prompt := e.prompt[:min(len(e.prompt), room)]
	seq := make([]int32, 0, T)
	seq = append(seq, tokenizer.BosID)
	seq = append(seq, prompt...)
	sep := len(seq)
	seq = append(seq, tokenizer.SepID)
	seq = append(seq, answer...)
	seq = append(seq, tokenizer.EosID)
	return seq, sep
}

// MaxNew is the most tokens Prompts leaves room for: MaxLen less [BOS], one prompt token and
// [SEP].
func (s *Source) MaxNew() int { return s.opts.MaxLen - 3 }

// Prompts gives the generation inputs for examples: per example [BOS] prompt [SEP] (cut so
// that maxNew generated tokens still fit in MaxLen), and their images ([N, H, W, C], nil for
// text tasks). Decode the generated tokens with the tokenizer and score them with Task.Score.
func (s *Source) Prompts(examples []Example, maxNew int) ([][]int32, *tensors.Tensor, error) {
	T := s.opts.MaxLen
	if maxNew < 1 || maxNew > s.MaxNew() {
		return nil, nil, fmt.Errorf("tasks: maxNew %d must be in [1, %d] for MaxLen %d", maxNew, s.MaxNew(), T)
	}
	cache := make([]*encoded, len(examples))
	out := make([][]int32, len(examples))
	var images []float32
	for i, ex := range examples {
		e := s.encode(examples, cache, i)
		prompt := e.prompt[:min(len(e.prompt), T-maxNew-1)]
		p := make([]int32, 0, len(prompt)+2)
		p = append(p, tokenizer.BosID)
		p = append(p, prompt...)
		out[i] = append(p, tokenizer.SepID)
		if s.imageSize > 0 {
			px, err := ex.Image()
			if err == nil {
				err = checkImage(px, s.imageSize, s.channels)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("example %d: %w", i, err)
			}
			images = append(images, px...)
		}
	}
	var img *tensors.Tensor
	if images != nil {
		img = tensors.FromFlatDataAndDimensions(images, len(examples), s.imageSize, s.imageSize, s.channels)
	}
	return out, img, nil
}
