package site

import (
	"github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// Hook is called by a model at each of its sites while it builds the graph.
// A nil Hook means "the base model, unchanged"; models must accept nil.
//
// sc is the model's context at its root scope: a hook opens the scopes it
// needs itself, so its variables never mix with the base's.
type Hook interface {
	// Input adapts the embeddings of one modality.
	// x is [batch, seq, width] and mask is [batch, seq] Bool (true = real token).
	// It may return a longer sequence (prompt tuning prepends tokens); the
	// mask it returns must match.
	Input(sc *mlmodel.Scope, s Site, x, mask *graph.Node) (*graph.Node, *graph.Node)

	// Linear returns the output of the site's projection given its input x
	// [..., In] and the base output y = x·W+b [..., Out]. Returning y unchanged
	// leaves the site as it is.
	Linear(sc *mlmodel.Scope, s Site, x, y *graph.Node) *graph.Node
}

// CallInput calls h.Input, or returns x and mask unchanged when h is nil.
func CallInput(h Hook, sc *mlmodel.Scope, s Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	if h == nil {
		return x, mask
	}
	return h.Input(sc, s, x, mask)
}

// CallLinear calls h.Linear, or returns y unchanged when h is nil.
func CallLinear(h Hook, sc *mlmodel.Scope, s Site, x, y *graph.Node) *graph.Node {
	if h == nil {
		return y
	}
	return h.Linear(sc, s, x, y)
}
