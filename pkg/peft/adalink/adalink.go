package adalink

import (
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/ml/layers/activation"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/peftlab/peftlab/pkg/site"
)

// Input implements site.Hook: it returns x + φ(x·A)·B with the mask unchanged.
// sc is the adapter's scope; A and B are created there on the first build
// (A random, B zero) and reused afterwards, including when loaded from a file.
func (c Config) Input(sc *mlmodel.Scope, s site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	c = c.WithDefaults()
	scope := s.InScope(sc)
	if c.Shared {
		scope = sc.At("%s", sharedScope)
	}
	a, b := c.variables(scope, x.Graph(), x.DType(), s.In)
	return Apply(x, a, b, c.Activation), mask
}

// Linear implements site.Hook. AdaLink resolves no Linear site, so it is never
// called; it leaves y unchanged.
func (c Config) Linear(_ *mlmodel.Scope, _ site.Site, _, y *graph.Node) *graph.Node { return y }

// variables returns the graph values of A [d, r] and B [r, d] in scope.
func (c Config) variables(scope *mlmodel.Scope, g *graph.Graph, dtype dtypes.DType, d int) (a, b *graph.Node) {
	var initA mlmodel.VariableInitializer
	if c.InitStd > 0 {
		initA = initializer.RandomNormalFn(scope, c.InitStd)
	} else {
		// Kaiming-uniform with a=√5 on fan-in d: bound = gain·√(3/d) with gain = √(2/(1+5)).
		bound := 1 / math.Sqrt(float64(d))
		initA = initializer.RandomUniformFn(scope, -bound, bound)
	}
	va := scope.WithInitializer(initA).VariableWithShape(nameA, shapes.Make(dtype, d, c.Rank))
	vb := scope.WithInitializer(initializer.Zero).VariableWithShape(nameB, shapes.Make(dtype, c.Rank, d))
	return va.NodeValue(g), vb.NodeValue(g)
}

// Apply computes x + φ(x·A)·B for x [..., d], A [d, r] and B [r, d]; it is
// the AdaLink map itself, exported for servers that gather A and B per task.
func Apply(x, a, b *graph.Node, activation string) *graph.Node {
	h := graph.MatMul(x, a)
	h = activate(h, activation)
	return graph.Add(x, graph.MatMul(h, b))
}

// activate applies φ; Resolve has already rejected unknown names.
func activate(h *graph.Node, name string) *graph.Node {
	switch name {
	case "relu":
		return activation.Relu(h)
	case "gelu":
		return activation.Gelu(h)
	case "tanh":
		return graph.Tanh(h)
	}
	return h
}
