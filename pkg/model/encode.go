package model

import (
	"fmt"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// Inputs are one batch of model inputs; either field may be nil, not both.
type Inputs struct {
	// Tokens is [B, T] Int32; id 0 is padding. Pad on the right: positions
	// count from the first token, so left padding would shift them. Ids
	// must be below Vocab; the graph cannot check values, Generate does.
	Tokens *Node
	// Images is [B, ImageSize, ImageSize, Channels] Float32.
	Images *Node
}

// Encode runs the model body and returns the final hidden states [B, S, d]
// and their validity mask [B, S] Bool (false at padding).
//
// The sequence is [image patches][text tokens], where the text includes any
// tokens the input/text hook inserted (S = patches + T + inserted). Steps:
// embeddings → input sites (the hook sees the raw modality embeddings) →
// position and type embeddings → pre-LN blocks → final LayerNorm.
//
// Attention is prefix-LM: image patches see all patches; a text position
// sees all patches and the text positions at or before it. No position
// attends to padding, except that a padding position attends to itself, so
// no attention row is empty; outputs at padding positions are unspecified.
//
// sc may be at any scope: the model works from its root, with
// Checked(false), so weights loaded from a checkpoint are reused and
// missing ones created. It panics with a descriptive error on bad shapes or
// an invalid Config (GoMLX graph-building style); Generate and the
// training code turn those panics into errors.
func Encode(sc *mlmodel.Scope, c Config, hook site.Hook, in Inputs) (hidden, mask *Node) {
	if err := c.Validate(); err != nil {
		panic(err)
	}
	root := sc.Store().RootScope()
	checkInputs(c, in)

	var xs, masks []*Node
	patches := 0
	if in.Images != nil {
		x, m := embedImages(root, c, hook, in.Images)
		patches = x.Shape().Dimensions[1]
		xs, masks = append(xs, x), append(masks, m)
	}
	if in.Tokens != nil {
		x, m := embedText(root, c, hook, in.Tokens)
		xs, masks = append(xs, x), append(masks, m)
	}
	x, mask := xs[0], masks[0]
	if len(xs) > 1 {
		x, mask = Concatenate(xs, 1), Concatenate(masks, 1)
	}

	bias := AttentionBias(AttentionMask(mask, patches), c.Heads)
	for i := 0; i < c.Blocks; i++ {
		x = block(root, c, hook, i, x, bias)
	}
	return LayerNorm(root.At("%s", scopeFinalLN), x), mask
}

// AttentionMask returns which key each query may attend to, [B, S, S] Bool
// (query, key), for a sequence whose first prefix positions are image
// patches and whose mask [B, S] marks real positions: key k is visible to
// query q when k is real and (k < prefix or k <= q); every position also
// sees itself.
func AttentionMask(mask *Node, prefix int) *Node {
	g := mask.Graph()
	b, s := mask.Shape().Dimensions[0], mask.Shape().Dimensions[1]
	q := Iota(g, shapes.Make(dtypes.Int32, s, s), 0)
	k := Iota(g, shapes.Make(dtypes.Int32, s, s), 1)
	structural := Or(LessOrEqual(k, q), LessThan(k, Scalar(g, dtypes.Int32, prefix)))
	keyReal := BroadcastToDims(InsertAxes(mask, 1), b, s, s)
	allowed := And(BroadcastToDims(InsertAxes(structural, 0), b, s, s), keyReal)
	diagonal := BroadcastToDims(InsertAxes(Equal(q, k), 0), b, s, s)
	return Or(allowed, diagonal)
}

// checkInputs panics with a clear message when in does not fit c; it
// returns the batch size.
func checkInputs(c Config, in Inputs) int {
	if in.Tokens == nil && in.Images == nil {
		panic(fmt.Errorf("model %s: no input given (Inputs.Tokens and Inputs.Images are both nil)", c.ModelName()))
	}
	batch := -1
	if t := in.Tokens; t != nil {
		if !c.HasText() {
			panic(fmt.Errorf("model %s has no text input (Vocab = 0) but tokens were given", c.ModelName()))
		}
		if t.Rank() != 2 || t.DType() != dtypes.Int32 {
			panic(fmt.Errorf("tokens must be [batch, seq] Int32, got %s", t.Shape()))
		}
		batch = t.Shape().Dimensions[0]
	}
	if im := in.Images; im != nil {
		if !c.HasImage() {
			panic(fmt.Errorf("model %s has no image input (ImageSize = 0) but images were given", c.ModelName()))
		}
		want := []int{im.Shape().Dimensions[0], c.ImageSize, c.ImageSize, c.Channels}
		if im.Rank() != 4 || im.DType() != dtypes.Float32 || !shapes.Make(dtypes.Float32, want...).Equal(im.Shape()) {
			panic(fmt.Errorf("images must be [batch, %d, %d, %d] Float32, got %s", c.ImageSize, c.ImageSize, c.Channels, im.Shape()))
		}
		if batch >= 0 && im.Shape().Dimensions[0] != batch {
			panic(fmt.Errorf("tokens have batch size %d but images %d", batch, im.Shape().Dimensions[0]))
		}
		batch = im.Shape().Dimensions[0]
	}
	return batch
}

// Classify returns class logits [B, Classes]: the mean of the final hidden
// states over real (unmasked) positions, through the Linear site head/cls.
// Padding therefore never changes the result.
func Classify(sc *mlmodel.Scope, c Config, hook site.Hook, in Inputs) *Node {
	if c.Classes <= 0 {
		panic(fmt.Errorf("model %s has no classification head (Classes = 0)", c.ModelName()))
	}
	hidden, mask := Encode(sc, c, hook, in)
	m := InsertAxes(ConvertDType(mask, dtypes.Float32), -1)
	sum := ReduceSum(Mul(hidden, m), 1)
	count := Max(ReduceSum(m, 1), Scalar(hidden.Graph(), dtypes.Float32, 1))
	pooled := Div(sum, count)
	return Linear(sc.Store().RootScope(), hook, c.siteOf(SiteCls), pooled)
}

// LMLogits returns next-token logits [B, T, Vocab] for the caller's T text
// positions: position t predicts token t+1. Image patches and tokens an
// input hook inserted (which must be prepended, as prompt tuning does) are
// dropped before the Linear site head/lm.
func LMLogits(sc *mlmodel.Scope, c Config, hook site.Hook, in Inputs) *Node {
	if in.Tokens == nil {
		panic(fmt.Errorf("model %s: LMLogits needs text tokens (Inputs.Tokens is nil)", c.ModelName()))
	}
	hidden, _ := Encode(sc, c, hook, in)
	t := in.Tokens.Shape().Dimensions[1]
	hidden = LastPositions(hidden, t)
	return Linear(sc.Store().RootScope(), hook, c.siteOf(SiteLM), hidden)
}

// LastPositions returns the last n positions of x [B, S, ...] as [B, n, ...],
// with a Gather (differentiable on every backend, unlike Slice).
func LastPositions(x *Node, n int) *Node {
	s := x.Shape().Dimensions[1]
	if n == s {
		return x
	}
	if n > s {
		panic(fmt.Errorf("LastPositions: asked for %d positions of a sequence of %d", n, s))
	}
	perm := make([]int, x.Rank())
	for i := range perm {
		perm[i] = i
	}
	perm[0], perm[1] = 1, 0
	idx := AddScalar(Iota(x.Graph(), shapes.Make(dtypes.Int32, n, 1), 0), s-n)
	picked := Gather(TransposeAllDims(x, perm...), idx) // [n, B, ...]
	return TransposeAllDims(picked, perm...)
}
