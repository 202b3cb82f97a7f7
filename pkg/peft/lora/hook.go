package lora

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style: graph ops read as math.
	"github.com/gomlx/gomlx/ml/layers"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/peftlab/peftlab/pkg/site"
)

// Input implements site.Hook. Resolve never selects an Input site, so the
// dispatcher never calls it; it leaves its arguments unchanged.
func (c Config) Input(_ *mlmodel.Scope, _ site.Site, x, mask *Node) (*Node, *Node) {
	return x, mask
}

// Linear implements site.Hook: it returns y + scale·(dropout(x)·A)·B, with A
// and B in the site's scope below sc (the adapter scope), created on first
// use (A Kaiming-uniform, B zero) or reused when loaded. Once the adapter is
// merged (see Merge) the update already lives in the base weights and Linear
// returns y unchanged.
func (c Config) Linear(sc *mlmodel.Scope, s site.Site, x, y *Node) *Node {
	if mergedAt(sc) {
		return y
	}
	c = c.WithDefaults()
	g := x.Graph()
	a, b := Weights(sc, s, c.Rank, g)

	dims := x.Shape().Dimensions
	flat := Reshape(x, -1, s.In) // Rank-2 products: the layouts the Go backend's matmul kernels take directly.
	if c.Dropout > 0 && sc.IsTraining(g) {
		flat = layers.DropoutStatic(sc, flat, c.Dropout)
	}
	if flat.DType() != dtypes.Float32 {
		a, b = ConvertDType(a, flat.DType()), ConvertDType(b, flat.DType())
	}
	delta := Dot(Dot(flat, a).Product(), b).Product()
	if scale := c.Scale(); scale != 1 { // alpha = rank (r = 8 by default) is scale 1: skip a pass over [N, out].
		delta = MulScalar(delta, scale)
	}
	outDims := append(append([]int{}, dims[:len(dims)-1]...), s.Out)
	return Add(y, Reshape(delta, outDims...))
}

// Weights returns the graph values of lora_A [s.In, rank] and lora_B
// [rank, s.Out] for site s below sc (an adapter scope), creating the
// variables if they do not exist yet: A uniform in ±1/√in (PyTorch's
// kaiming_uniform_ with a = √5, which PEFT uses), B zero. Existing variables
// (loaded from a file) are reused; a shape that does not match panics with
// GoMLX's message naming the variable.
func Weights(sc *mlmodel.Scope, s site.Site, rank int, g *Graph) (a, b *Node) {
	sctx := s.InScope(sc)
	bound := 1 / math.Sqrt(float64(s.In))
	av := sctx.WithInitializer(initializer.RandomUniformFn(sc, -bound, bound)).
		VariableWithShape(VarA, shapes.Make(dtypes.Float32, s.In, rank))
	bv := sctx.WithInitializer(initializer.Zero).
		VariableWithShape(VarB, shapes.Make(dtypes.Float32, rank, s.Out))
	return av.NodeValue(g), bv.NodeValue(g)
}
