package backend_test

import (
	"fmt"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/peftlab/peftlab/pkg/backend"
)

// The gradient of sum(x·w) with respect to w, on the default backend, with
// GoMLX's own matrix-product gradient.
func Example() {
	b, err := backend.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	grad := MustExecOnce(b, func(x, w *Node) *Node {
		return Gradient(ReduceAllSum(MatMul(x, w)), w)[0]
	}, [][]float32{{1, 2}, {3, 4}}, [][]float32{{1, 0, 1}, {0, 1, 1}})
	fmt.Println(grad.Value())
	// Output:
	// [[4 4 4] [6 6 6]]
}
