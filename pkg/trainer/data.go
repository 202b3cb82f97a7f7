package trainer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
)

// Batch is one batch of examples as host tensors. Inputs: Tokens, Images or
// both. Targets: Labels for classification, or Targets (with optional
// Weights) for language modelling; the targets present choose the objective.
type Batch struct {
	// Tokens is [B, T] Int32 text, 0 = padding (pad on the right).
	Tokens *tensors.Tensor
	// Images is [B, H, W, C] Float32.
	Images *tensors.Tensor
	// Labels is [B] Int32 class ids, for classification.
	Labels *tensors.Tensor
	// Targets is [B, T] Int32 for language modelling: Targets[b, t] is the
	// token position t of Tokens must predict (usually Tokens[b, t+1]).
	Targets *tensors.Tensor
	// Weights is [B, T] Float32: how much each target counts. Nil means 1
	// where Targets is not 0 (padding) and 0 where it is.
	Weights *tensors.Tensor
}

// Objective is what a batch trains: a class per example or the next tokens. In JSON and
// messages it is its name ("lm").
type Objective string

// Objectives a Batch can carry.
const (
	Classification Objective = "classification"
	LanguageModel  Objective = "lm"
)

// Source is where a run's batches come from. Sources are deterministic: the
// same (step, size, seed) must give the same batch, so that runs repeat.
// Data packages implement it; Memory is the in-memory one.
type Source interface {
	// TrainBatch returns the batch of training step `step` (from 0), with
	// `size` examples, in an order chosen by seed.
	TrainBatch(step, size int, seed int64) (Batch, error)
	// EvalBatches returns the evaluation examples, in batches of at most size.
	EvalBatches(size int) ([]Batch, error)
}

// Size returns B, the number of examples, or an error when the fields
// disagree or no input is given.
func (b Batch) Size() (int, error) {
	n := -1
	for _, f := range b.fields() {
		if f.t == nil {
			continue
		}
		if f.t.Rank() == 0 {
			return 0, fmt.Errorf("batch %s is a scalar, want a leading batch axis", f.name)
		}
		d := f.t.Shape().Dimensions[0]
		if n >= 0 && d != n {
			return 0, fmt.Errorf("batch fields disagree on the number of examples: %s has %d, others %d", f.name, d, n)
		}
		n = d
	}
	if b.Tokens == nil && b.Images == nil {
		return 0, errors.New("batch has no inputs (neither Tokens nor Images)")
	}
	return n, nil
}

// Objective returns Classification or LanguageModel, by the targets present.
func (b Batch) Objective() (Objective, error) {
	switch {
	case b.Labels != nil && b.Targets != nil:
		return "", errors.New("batch has both Labels (classification) and Targets (language modelling): give one")
	case b.Labels != nil:
		return Classification, nil
	case b.Targets != nil:
		return LanguageModel, nil
	}
	return "", errors.New("batch has no targets: set Labels (classification) or Targets (language modelling)")
}

type field struct {
	name  string
	t     *tensors.Tensor
	dtype dtypes.DType
	rank  int
}

func (b Batch) fields() []field {
	return []field{
		{"Tokens", b.Tokens, dtypes.Int32, 2},
		{"Images", b.Images, dtypes.Float32, 4},
		{"Labels", b.Labels, dtypes.Int32, 1},
		{"Targets", b.Targets, dtypes.Int32, 2},
		{"Weights", b.Weights, dtypes.Float32, 2},
	}
}

// checkShapes checks dtypes and ranks of the fields present.
func (b Batch) checkShapes() error {
	for _, f := range b.fields() {
		if f.t == nil {
			continue
		}
		if f.t.DType() != f.dtype || f.t.Rank() != f.rank {
			return fmt.Errorf("batch %s is %s, want rank %d %s", f.name, f.t.Shape(), f.rank, f.dtype)
		}
	}
	if b.Weights != nil && b.Targets == nil {
		return errors.New("batch has Weights but no Targets")
	}
	if b.Targets != nil && (b.Tokens == nil || !slices.Equal(b.Targets.Shape().Dimensions, b.Tokens.Shape().Dimensions)) {
		return fmt.Errorf("batch Targets (%v) must match Tokens (%v)", shapeOf(b.Targets), shapeOf(b.Tokens))
	}
	if b.Weights != nil && !slices.Equal(b.Weights.Shape().Dimensions, b.Targets.Shape().Dimensions) {
		return fmt.Errorf("batch Weights (%s) must match Targets (%s)", b.Weights.Shape(), b.Targets.Shape())
	}
	return nil
}

func shapeOf(t *tensors.Tensor) string {
	if t == nil {
		return "missing"
	}
	return t.Shape().String()
}

// Memory is a Source over examples held in memory: the training examples are
// visited in a fresh seeded permutation every epoch, and batches run across
// epoch boundaries, so every batch has exactly the requested size.
type Memory struct {
	train, eval columns
	n           int
	perms       map[int][]int // epoch -> permutation, for the epochs in use
	permSeed    int64
}

// NewMemory returns a Source over the examples of train (one Batch holding
// all of them) and eval (may be the zero Batch: no evaluation examples).
func NewMemory(train, eval Batch) (*Memory, error) {
	tc, n, err := newColumns(train)
	if err != nil {
		return nil, fmt.Errorf("training examples: %w", err)
	}
	if n == 0 {
		return nil, errors.New("training examples: none")
	}
	m := &Memory{train: tc, n: n}
	if eval.Tokens != nil || eval.Images != nil {
		if m.eval, _, err = newColumns(eval); err != nil {
			return nil, fmt.Errorf("evaluation examples: %w", err)
		}
		if !m.eval.sameKind(tc) {
			return nil, errors.New("evaluation examples have different fields from the training examples")
		}
	}
	return m, nil
}

// Len returns the number of training examples.
func (m *Memory) Len() int { return m.n }

// TrainBatch implements Source.
func (m *Memory) TrainBatch(step, size int, seed int64) (Batch, error) {
	if step < 0 || size <= 0 {
		return Batch{}, fmt.Errorf("TrainBatch(step=%d, size=%d): want step >= 0 and size > 0", step, size)
	}
	if m.perms == nil || m.permSeed != seed {
		m.perms, m.permSeed = map[int][]int{}, seed
	}
	rows := make([]int, size)
	for i := range rows {
		k := step*size + i
		epoch := k / m.n
		perm, ok := m.perms[epoch]
		if !ok {
			r := rand.New(rand.NewPCG(uint64(seed), uint64(epoch)))
			perm = r.Perm(m.n)
			if len(m.perms) > 2 {
				clear(m.perms)
			}
			m.perms[epoch] = perm
		}
		rows[i] = perm[k%m.n]
	}
	return m.train.rows(rows), nil
}

// EvalBatches implements Source: the evaluation examples in order.
func (m *Memory) EvalBatches(size int) ([]Batch, error) {
	if size <= 0 {
		return nil, fmt.Errorf("EvalBatches(size=%d): want size > 0", size)
	}
	var out []Batch
	n := m.eval.len()
	for start := 0; start < n; start += size {
		rows := make([]int, 0, size)
		for i := start; i < min(start+size, n); i++ {
			rows = append(rows, i)
		}
		out = append(out, m.eval.rows(rows))
	}
	return out, nil
}

// column is one Batch field as flat host data, rowLen values per example.
type column[T int32 | float32] struct {
	data   []T
	dims   []int // without the batch axis
	rowLen int
}

func newColumn[T int32 | float32](t *tensors.Tensor) *column[T] {
	if t == nil {
		return nil
	}
	dims := t.Shape().Dimensions[1:]
	rowLen := 1
	for _, d := range dims {
		rowLen *= d
	}
	return &column[T]{data: tensors.MustCopyFlatData[T](t), dims: dims, rowLen: rowLen}
}

func (c *column[T]) rows(idx []int) *tensors.Tensor {
	if c == nil {
		return nil
	}
	out := make([]T, 0, len(idx)*c.rowLen)
	for _, i := range idx {
		out = append(out, c.data[i*c.rowLen:(i+1)*c.rowLen]...)
	}
	return tensors.FromFlatDataAndDimensions(out, append([]int{len(idx)}, c.dims...)...)
}

type columns struct {
	tokens, labels, targets *column[int32]
	images, weights         *column[float32]
	n                       int
}

func newColumns(b Batch) (columns, int, error) {
	if err := b.checkShapes(); err != nil {
		return columns{}, 0, err
	}
	n, err := b.Size()
	if err != nil {
		return columns{}, 0, err
	}
	if _, err := b.Objective(); err != nil {
		return columns{}, 0, err
	}
	return columns{
		tokens: newColumn[int32](b.Tokens), labels: newColumn[int32](b.Labels), targets: newColumn[int32](b.Targets),
		images: newColumn[float32](b.Images), weights: newColumn[float32](b.Weights), n: n,
	}, n, nil
}

func (c columns) len() int { return c.n }

func (c columns) sameKind(o columns) bool {
	return (c.tokens == nil) == (o.tokens == nil) && (c.images == nil) == (o.images == nil) &&
		(c.labels == nil) == (o.labels == nil) && (c.targets == nil) == (o.targets == nil) &&
		(c.weights == nil) == (o.weights == nil)
}

func (c columns) rows(idx []int) Batch {
	return Batch{Tokens: c.tokens.rows(idx), Images: c.images.rows(idx), Labels: c.labels.rows(idx),
		Targets: c.targets.rows(idx), Weights: c.weights.rows(idx)}
}
