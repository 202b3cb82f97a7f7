package prompt

import (
	"fmt"
	"math/rand/v2"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// Input implements site.Hook: it prepends the p soft tokens to x [B, T, d],
// giving [B, p+T, d], and marks them real in the mask ([B, p+T]).
//
// The prompt variable is created on the first build with its initial value
// computed right away on the host (see InitialValue), so it is the same
// whether the base was loaded from a file or is new; for a new base, whose
// weights only get values when a graph first runs, the base variables
// created so far are initialised on the spot to make that possible. A prompt
// that already exists (trained, or loaded from an adapter file) is used as it
// is.
func (c Config) Input(sc *mlmodel.Scope, s site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	c = c.WithDefaults()
	g := x.Graph()
	batch, d := x.Shape().Dim(0), x.Shape().Dim(-1)
	scope := s.InScope(sc)
	v := scope.GetVariable(promptName)
	if v == nil {
		value, err := c.initialValue(sc, g, x.DType(), d)
		if err != nil {
			panic(fmt.Errorf("prompt tuning: initialising %s/%s: %w", scope.Scope(), promptName, err))
		}
		v = scope.VariableWithValue(promptName, value)
	}
	if want := shapes.Make(x.DType(), c.Tokens, d); !v.Shape().Equal(want) {
		panic(fmt.Errorf("prompt tuning: %s is %s but the config asks for %s (num_virtual_tokens=%d, width=%d)",
			v.Path(), v.Shape(), want, c.Tokens, d))
	}
	soft := graph.BroadcastPrefix(v.NodeValue(g), batch)
	x = graph.Concatenate([]*graph.Node{soft, x}, 1)
	softMask := graph.Ones(g, shapes.Make(dtypes.Bool, batch, c.Tokens))
	mask = graph.Concatenate([]*graph.Node{softMask, mask}, 1)
	return x, mask
}

// Linear implements site.Hook. Prompt tuning resolves no Linear site, so it is
// never called; it leaves y unchanged.
func (c Config) Linear(_ *mlmodel.Scope, _ site.Site, _, y *graph.Node) *graph.Node { return y }

// initialValue returns the [p, d] starting prompt in dtype.
func (c Config) initialValue(sc *mlmodel.Scope, g *graph.Graph, dtype dtypes.DType, d int) (*tensors.Tensor, error) {
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 {
		return nil, fmt.Errorf("embeddings are %s; prompt tuning supports Float32 and Float64", dtype)
	}
	if c.Init == InitRandom {
		return RandomValue(c.Tokens, d, c.Seed, dtype), nil
	}
	table := sc.Store().GetVariable(mlmodel.JoinPath(embeddingScope, embeddingName))
	if table == nil {
		return nil, fmt.Errorf("the base model has no %s/%s table to sample tokens from", embeddingScope, embeddingName)
	}
	if !table.HasValue() {
		// A fresh base on its first build: its variables only get values when
		// the graph first runs. Initialise the ones created so far now (each
		// with its own initializer, as would happen anyway) so the prompt can
		// copy rows of the table the model will really use.
		if err := sc.Store().InitializeVariables(g.Backend(), nil); err != nil {
			return nil, err
		}
	}
	t, err := table.Value()
	if err != nil {
		return nil, err
	}
	return InitialValue(t, c.Tokens, c.Seed, dtype)
}

// SampleTokens returns p token ids drawn with the seed from [1, vocab): id 0 is
// padding and never drawn. Ids are distinct when the vocabulary has p or more
// non-padding tokens.
func SampleTokens(vocab, p int, seed int64) []int32 {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed_0f_50f7_707e))
	n := vocab - 1
	ids := make([]int32, p)
	if p > n {
		for i := range ids {
			ids[i] = int32(1 + rng.IntN(n))
		}
		return ids
	}
	// Partial Fisher-Yates over a sparse permutation of 1..n.
	swapped := map[int]int{}
	at := func(i int) int {
		if v, ok := swapped[i]; ok {
			return v
		}
		return i + 1
	}
	for i := range ids {
		j := i + rng.IntN(n-i)
		vi, vj := at(i), at(j)
		swapped[i], swapped[j] = vj, vi
		ids[i] = int32(vj)
	}
	return ids
}

// InitialValue returns the rows of the embedding table [vocab, d] at
// SampleTokens(vocab, p, seed), as a [p, d] tensor of dtype.
func InitialValue(table *tensors.Tensor, p int, seed int64, dtype dtypes.DType) (*tensors.Tensor, error) {
	if table.Rank() != 2 {
		return nil, fmt.Errorf("embedding table has shape %s, want [vocab, width]", table.Shape())
	}
	vocab, d := table.Shape().Dim(0), table.Shape().Dim(1)
	if vocab < 2 {
		return nil, fmt.Errorf("embedding table has %d rows: no token besides padding to sample", vocab)
	}
	var flat []float64
	switch table.DType() {
	case dtypes.Float32:
		f, err := tensors.CopyFlatData[float32](table)
		if err != nil {
			return nil, err
		}
		flat = make([]float64, len(f))
		for i, v := range f {
			flat[i] = float64(v)
		}
	case dtypes.Float64:
		f, err := tensors.CopyFlatData[float64](table)
		if err != nil {
			return nil, err
		}
		flat = f
	default:
		return nil, fmt.Errorf("embedding table is %s; prompt tuning supports Float32 and Float64", table.DType())
	}
	rows := make([]float64, 0, p*d)
	for _, id := range SampleTokens(vocab, p, seed) {
		rows = append(rows, flat[int(id)*d:int(id+1)*d]...)
	}
	return fromFloat64(rows, dtype, p, d), nil
}

// RandomValue returns a [p, d] tensor of dtype drawn uniformly from
// [-0.5, 0.5) with the seed (Lester et al.'s random initialisation).
func RandomValue(p, d int, seed int64, dtype dtypes.DType) *tensors.Tensor {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x0a11_7a2d_0b5e_ed00))
	vals := make([]float64, p*d)
	for i := range vals {
		vals[i] = rng.Float64() - 0.5
	}
	return fromFloat64(vals, dtype, p, d)
}

func fromFloat64(vals []float64, dtype dtypes.DType, dims ...int) *tensors.Tensor {
	if dtype == dtypes.Float64 {
		return tensors.FromFlatDataAndDimensions(vals, dims...)
	}
	f := make([]float32, len(vals))
	for i, v := range vals {
		f[i] = float32(v)
	}
	return tensors.FromFlatDataAndDimensions(f, dims...)
}
