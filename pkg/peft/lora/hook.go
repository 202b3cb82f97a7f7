package lora

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX layer style: graph ops read as math.
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/peftlab/peftlab/pkg/site"
)

// Input implements site.Hook. Resolve never selects an Input site, so the
// dispatcher never calls it; it leaves its arguments unchanged.
func (c Config) Input(_ *context.Context, _ site.Site, x, mask *Node) (*Node, *Node) {
	return x, mask
}

// Linear implements site.Hook: it returns y + scale·(dropout(x)·A)·B, with A
// and B in the site's scope below ctx (the adapter scope), created on first
// use (A Kaiming-uniform, B zero) or reused when loaded. Once the adapter is
// merged (see Merge) the update already lives in the base weights and Linear
// returns y unchanged.
func (c Config) Linear(ctx *context.Context, s site.Site, x, y *Node) *Node {
	if mergedAt(ctx) {
		return y
	}
	c = c.WithDefaults()
	g := x.Graph()
	a, b := Weights(ctx, s, c.Rank, g)

	dims := x.Shape().Dimensions
	flat := Reshape(x, -1, s.In) // Dot on rank-2 operands: the form peftlab's fast gradients cover.
	if c.Dropout > 0 && ctx.IsTraining(g) {
		flat = layers.DropoutStatic(ctx, flat, c.Dropout)
	}
	if flat.DType() != dtypes.Float32 {
		a, b = ConvertDType(a, flat.DType()), ConvertDType(b, flat.DType())
	}
	delta := MulScalar(Dot(Dot(flat, a), b), c.Scale())
	outDims := append(append([]int{}, dims[:len(dims)-1]...), s.Out)
	return Add(y, Reshape(delta, outDims...))
}

// Weights returns the graph values of lora_A [s.In, rank] and lora_B
// [rank, s.Out] for site s below ctx (an adapter scope), creating the
// variables if they do not exist yet: A uniform in ±1/√in (PyTorch's
// kaiming_uniform_ with a = √5, which PEFT uses), B zero. Existing variables
// (loaded from a file) are reused; a shape that does not match panics with
// GoMLX's message naming the variable.
func Weights(ctx *context.Context, s site.Site, rank int, g *Graph) (a, b *Node) {
	sctx := s.InScope(ctx).Checked(false)
	bound := 1 / math.Sqrt(float64(s.In))
	av := sctx.WithInitializer(initializers.RandomUniformFn(ctx, -bound, bound)).
		VariableWithShape(VarA, shapes.Make(dtypes.Float32, s.In, rank))
	bv := sctx.WithInitializer(initializers.Zero).
		VariableWithShape(VarB, shapes.Make(dtypes.Float32, rank, s.Out))
	return av.ValueGraph(g), bv.ValueGraph(g)
}
