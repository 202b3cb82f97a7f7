package backend

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/graph"
)

// GoMLX v0.28 differentiates a matrix product (DotGeneral) into matrix
// products, but ends each operand's gradient with a Transpose back to the
// operand's axis order, also when that order is already right: the
// permutation is the identity, and the pure-Go backend still copies the
// whole tensor through its generic transpose iterator (about 16 ns per
// element). In a small LM's training step those no-op copies of every
// Dense layer's input gradient were ~40% of the step's transposes
// (bench/NOTES.md). InstallGradients wraps GoMLX's DotGeneral gradient and
// drops such transposes; everything else is GoMLX's.
//
// The permutation is unexported upstream, so it is read from the node's
// String() form ("permutation=[0 1]"); when that cannot be parsed the
// transpose is kept, so a change of format costs speed, never correctness.

var installOnce sync.Once

// InstallGradients registers the wrapper in graph.VJPRegistration, GoMLX's
// global table of gradient functions; it affects every graph built
// afterwards, on every backend. New calls it; it is idempotent.
func InstallGradients() {
	installOnce.Do(func() {
		stock := graph.VJPRegistration[graph.NodeTypeDotGeneral]
		graph.VJPRegistration[graph.NodeTypeDotGeneral] = func(node *graph.Node, v []*graph.Node, s shapes.Shape) []*graph.Node {
			grads := stock(node, v, s)
			for i, g := range grads {
				grads[i] = skipIdentityTranspose(g)
			}
			return grads
		}
	})
}

var permutationRE = regexp.MustCompile(`permutation=\[([0-9 ]*)\]`)

// skipIdentityTranspose returns the input of n when n is a Transpose that
// moves nothing, and n otherwise.
func skipIdentityTranspose(n *graph.Node) *graph.Node {
	if n == nil || n.Type() != graph.NodeTypeTranspose || len(n.Inputs()) != 1 {
		return n
	}
	in := n.Inputs()[0]
	if !slices.Equal(in.Shape().Dimensions, n.Shape().Dimensions) || in.DType() != n.DType() {
		return n
	}
	m := permutationRE.FindStringSubmatch(n.String())
	if m == nil {
		return n
	}
	fields := strings.Fields(m[1])
	if len(fields) != n.Rank() {
		return n
	}
	for i, f := range fields {
		if p, err := strconv.Atoi(f); err != nil || p != i {
			return n
		}
	}
	return in
}
