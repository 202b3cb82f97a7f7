package model

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style: graph ops read as math.
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/site"
)

// The layers are written here rather than taken from GoMLX's layers package:
// its LayerNormalization uses epsilon 1e-3 and re-marks its weights trainable
// on every build, its MultiHeadAttention scales by 1/d instead of 1/√d, and
// its Dense names scopes itself. Ours put every weight at the site's path.

const (
	// lnEpsilon is the LayerNorm variance floor (PyTorch's default).
	lnEpsilon = 1e-5
	// embedStddev is the standard deviation of the initial embedding tables.
	embedStddev = 0.02
	// blocked is added to the attention logits of pairs that may not attend:
	// exp(blocked - max) underflows to exactly 0 in float32.
	blocked = -1e9
)

var f32 = dtypes.Float32

// Linear computes x·W+b at the Linear site s, with W [s.In, s.Out] and b
// [s.Out] in the site's scope below root ("/block/0/attn/q/weights"), and then
// lets hook adapt the result. x is [..., s.In]; the result is [..., s.Out].
//
// root must be the model's root context (scope "/"): the hook receives it
// as is. Weights are initialised Glorot-uniform, biases to zero; variables
// that already exist (loaded from a checkpoint) are reused.
func Linear(root *mlmodel.Scope, hook site.Hook, s site.Site, x *Node) *Node {
	if s.Kind != site.Linear {
		panic(fmt.Sprintf("model.Linear called with %s site %q", s.Kind, s.Name))
	}
	dims := x.Shape().Dimensions
	if len(dims) == 0 || dims[len(dims)-1] != s.In {
		panic(fmt.Sprintf("site %s expects inputs [..., %d], got %s", s.Name, s.In, x.Shape()))
	}
	g := x.Graph()
	sctx := s.InScope(root)
	w := sctx.WithInitializer(initializer.GlorotUniformFn(root)).
		VariableWithShape(varWeights, shapes.Make(f32, s.In, s.Out)).NodeValue(g)
	b := sctx.WithInitializer(initializer.Zero).
		VariableWithShape(varBiases, shapes.Make(f32, s.Out)).NodeValue(g)

	y := Dot(Reshape(x, -1, s.In), w).Product()
	// The bias as a product with ones (exact), not a broadcast: see backend.RepeatRows.
	y = Add(y, backend.RepeatRows(b, y.Shape().Dimensions[0]))
	outDims := append(append([]int{}, dims[:len(dims)-1]...), s.Out)
	y = Reshape(y, outDims...)
	return site.CallLinear(hook, root, s, x, y)
}

// LayerNorm normalises x [..., d] over its last axis, then applies the learned
// "gain" (init 1) and "offset" (init 0) kept in sc's current scope. Epsilon
// is 1e-5.
//
// It runs as the backend's fused layer norm (one pass; its gradient is
// registered by backend.InstallGradients) and, where the backend has none, as
// the formula, whose four broadcasts the Go backend would run through its
// per-element index iterator.
func LayerNorm(sc *mlmodel.Scope, x *Node) *Node {
	g := x.Graph()
	d := x.Shape().Dimensions[x.Rank()-1]
	gain := sc.WithInitializer(initializer.One).VariableWithShape(varGain, shapes.Make(f32, d)).NodeValue(g)
	offset := sc.WithInitializer(initializer.Zero).VariableWithShape(varOffset, shapes.Make(f32, d)).NodeValue(g)
	if stockOps {
		return layerNorm(x, gain, offset)
	}
	backend.InstallGradients()
	return fusedOr(func() *Node { return BackendFusedLayerNorm(x, []int{x.Rank() - 1}, lnEpsilon, gain, offset) },
		func() *Node { return layerNorm(x, gain, offset) })
}

// layerNorm is LayerNorm's formula.
func layerNorm(x, gain, offset *Node) *Node {
	d := x.Shape().Dimensions[x.Rank()-1]
	mean := ReduceAndKeep(x, ReduceMean, -1)
	centered := Sub(x, mean)
	variance := ReduceAndKeep(Square(centered), ReduceMean, -1)
	normed := Div(centered, Sqrt(AddScalar(variance, lnEpsilon))) // Rsqrt has no gradient in GoMLX v0.26
	bcast := func(v *Node) *Node { return Reshape(v, append(onesLike(x.Rank()-1), d)...) }
	return Add(Mul(normed, bcast(gain)), bcast(offset))
}

func onesLike(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = 1
	}
	return s
}

// Attend is scaled dot-product attention over heads: q, k, v are [B, S, H,
// dh] and allowed is [B, S, S] Bool (query, key), true where the query may see
// the key. It returns softmax(q·kᵀ/√dh + mask)·v as [B, S, H, dh]. Every query
// row must allow at least one key (the model always allows a position to see
// itself), otherwise its weights are spread over blocked keys.
func Attend(q, k, v, allowed *Node) *Node {
	byHead := func(x *Node) *Node { return TransposeAllAxes(x, 0, 2, 1, 3) }
	kT := TransposeAllAxes(k, 0, 2, 3, 1)
	out := attend(byHead(q), kT, byHead(v), AttentionBias(allowed, q.Shape().Dimensions[2]))
	return byHead(out)
}

// AttentionBias turns allowed [B, S, S] Bool into the additive mask attend
// takes, [B, H, S, S] Float32: 0 where the query may see the key, blocked
// (-1e9) where not. Adding it gives the same weights as selecting blocked
// logits (exp of -1e9 underflows to exactly 0), with a gradient that is the
// identity; Encode builds it once and every block shares it.
func AttentionBias(allowed *Node, heads int) *Node {
	g := allowed.Graph()
	dims := allowed.Shape().Dimensions
	b, s := dims[0], dims[1]
	zero, neg := ScalarZero(g, f32), Scalar(g, f32, blocked)
	bias := Where(allowed, BroadcastToDims(zero, b, s, s), BroadcastToDims(neg, b, s, s))
	return BroadcastToDims(InsertAxes(bias, 1), b, heads, s, s)
}

// attend is Attend on q and v laid out by head, [B, H, S, dh], and k
// transposed, kT [B, H, dh, S], with the mask given as AttentionBias; it
// returns [B, H, S, dh].
//
// In this layout both products are batched matrix products in the form the
// Go backend's kernels take as they are, lhs [.., M, K] and rhs [.., K, N]
// (the "non-transposed" layout), and so are their gradients (see
// backend.InstallGradients). With k as [B, H, S, dh] the logits would be the
// "transposed" layout, whose small-product kernel on AVX2 machines is ~15x
// slower (bench/NOTES.md, section 6); laid out [B, S, H, dh], every operand
// would be copied first. The 1/√dh scale is applied to q, which is S/dh
// times smaller than the logits (for dh a power of 4, as in every shipped
// base, the scale is a power of two and the result is bit-identical to
// scaling the logits).
func attend(q, kT, v, bias *Node) *Node {
	dh := q.Shape().Dimensions[3]
	q = MulScalar(q, 1/math.Sqrt(float64(dh)))
	batch := []int{0, 1}
	logits := Add(DotGeneral(q, []int{3}, batch, kT, []int{2}, batch), bias)        // [B, H, Sq, Sk]
	return DotGeneral(softmaxLastAxis(logits), []int{3}, batch, v, []int{2}, batch) // [B, H, Sq, dh]
}

// softmaxLastAxis is the backend's fused softmax over the last axis, whose
// gradient backend.InstallGradients registers (y·(v - Σ v·y)). See fused.go
// for why not graph.Softmax.
func softmaxLastAxis(x *Node) *Node {
	if stockOps {
		return Softmax(x, -1)
	}
	backend.InstallGradients()
	return fusedSoftmax(x)
}

// attention is the multi-head self-attention of block i: sites attn/q, k, v, o.
func attention(root *mlmodel.Scope, c Config, hook site.Hook, i int, x, bias *Node) *Node {
	dims := x.Shape().Dimensions
	b, s := dims[0], dims[1]
	// heads projects x at site name and lays the result out by head with the
	// given permutation of [B, S, H, dh].
	heads := func(name string, perm ...int) *Node {
		y := Linear(root, hook, c.blockSite(i, name), x)
		return TransposeAllAxes(Reshape(y, b, s, c.Heads, c.HeadDim()), perm...)
	}
	// In the order q, k, v: a new model's weights are drawn in creation order.
	q := heads("attn/q", 0, 2, 1, 3)  // [B, H, S, dh]
	kT := heads("attn/k", 0, 2, 3, 1) // [B, H, dh, S]
	v := heads("attn/v", 0, 2, 1, 3)  // [B, H, S, dh]
	out := Reshape(TransposeAllAxes(attend(q, kT, v, bias), 0, 2, 1, 3), b, s, c.Width)
	return Linear(root, hook, c.blockSite(i, "attn/o"), out)
}

// mlp is block i's feed-forward part: mlp/up, GELU (the erf form), mlp/down.
func mlp(root *mlmodel.Scope, c Config, hook site.Hook, i int, x *Node) *Node {
	h := Linear(root, hook, c.blockSite(i, "mlp/up"), x)
	h = Gelu(h)
	return Linear(root, hook, c.blockSite(i, "mlp/down"), h)
}

// block is one pre-LN transformer block:
//
//	x = x + attention(LN1(x));  x = x + MLP(LN2(x))
func block(root *mlmodel.Scope, c Config, hook site.Hook, i int, x, bias *Node) *Node {
	x = Add(x, attention(root, c, hook, i, LayerNorm(root.At("block").At("%d", i).At("ln1"), x), bias))
	x = Add(x, mlp(root, c, hook, i, LayerNorm(root.At("block").At("%d", i).At("ln2"), x)))
	return x
}

// blockSite returns the Linear site "block/i/name".
func (c Config) blockSite(i int, name string) site.Site {
	in, out := c.blockSiteShape(name)
	return c.linearSite(BlockSite(i, name), in, out)
}
