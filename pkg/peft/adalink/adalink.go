package adalink

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
	"github.com/peftlab/peftlab/pkg/site"
)

// Input implements site.Hook: it returns x + φ(x·A)·B with the mask unchanged.
// ctx is the adapter's scope; A and B are created there on the first build
// (A random, B zero) and reused afterwards, including when loaded from a file.
func (c Config) Input(ctx *context.Context, s site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	scope := s.InScope(ctx)
	if c.Shared {
		scope = ctx.In(sharedScope)
	}
	a, b := c.variables(scope, x.Graph(), x.DType(), s.In)
	return Apply(x, a, b, c.Activation), mask
}

// Linear implements site.Hook. AdaLink resolves no Linear site, so it is never
// called; it leaves y unchanged.
func (c Config) Linear(_ *context.Context, _ site.Site, _, y *graph.Node) *graph.Node { return y }

// variables returns the graph values of A [d, r] and B [r, d] in scope.
func (c Config) variables(scope *context.Context, g *graph.Graph, dtype dtypes.DType, d int) (a, b *graph.Node) {
	scope = scope.Checked(false)
	var initA context.VariableInitializer
	if c.InitStd > 0 {
		initA = initializers.RandomNormalFn(scope, c.InitStd)
	} else {
		// Kaiming-uniform with a=√5 on fan-in d: bound = gain·√(3/d) with gain = √(2/(1+5)).
		bound := 1 / math.Sqrt(float64(d))
		initA = initializers.RandomUniformFn(scope, -bound, bound)
	}
	va := scope.WithInitializer(initA).VariableWithShape(nameA, shapes.Make(dtype, d, c.Rank))
	vb := scope.WithInitializer(initializers.Zero).VariableWithShape(nameB, shapes.Make(dtype, c.Rank, d))
	return va.ValueGraph(g), vb.ValueGraph(g)
}

// Apply computes x + φ(x·A)·B for x [..., d], A [d, r] and B [r, d]; it is
// the AdaLink map itself, exported for servers that gather A and B per task.
func Apply(x, a, b *graph.Node, activation string) *graph.Node {
	h := graph.MatMul(x, a)
	h = activate(h, activation)
	return graph.Add(x, graph.MatMul(h, b))
}

// activate applies φ; Resolve has already rejected unknown names.
func activate(h *graph.Node, activation string) *graph.Node {
	switch activation {
	case "relu":
		return activations.Relu(h)
	case "gelu":
		return activations.Gelu(h)
	case "tanh":
		return graph.Tanh(h)
	}
	return h
}
