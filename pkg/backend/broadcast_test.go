package backend

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
)

// TestBroadcastProducts checks the product forms of repeating and summing
// against GoMLX's broadcasts and reductions: repeats are exact, sums equal
// to rounding.
func TestBroadcastProducts(t *testing.T) {
	b, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(9, 10))
	x, bias := randTensor(r, 2, 3, 5), randTensor(r, 5)
	outs := MustExecOnceN(b, func(x, bias *Node) []*Node {
		col := ReduceAndKeep(x, ReduceMax, -1) // [2, 3, 1]
		return []*Node{RepeatRows(bias, 6), BroadcastToDims(InsertAxes(bias, 0), 6, 5),
			ExpandLast(col, 5), BroadcastToDims(col, 2, 3, 5),
			SumRows(x), ReduceSum(x, 0, 1), SumLast(x), ReduceSum(x, -1)}
	}, x, bias)
	for i := 0; i < 4; i += 2 {
		got, want := tensors.MustCopyFlatData[float64](outs[i]), tensors.MustCopyFlatData[float64](outs[i+1])
		if !outs[i].Shape().Equal(outs[i+1].Shape()) {
			t.Fatalf("output %d: shape %s, want %s", i, outs[i].Shape(), outs[i+1].Shape())
		}
		for j := range want {
			if got[j] != want[j] {
				t.Fatalf("output %d: element %d = %g, the broadcast gives %g", i, j, got[j], want[j])
			}
		}
	}
	for i, name := range map[int]string{4: "SumRows", 6: "SumLast"} {
		if !outs[i].Shape().Equal(outs[i+1].Shape()) {
			t.Fatalf("%s: shape %s, want %s", name, outs[i].Shape(), outs[i+1].Shape())
		}
		got, want := tensors.MustCopyFlatData[float64](outs[i]), tensors.MustCopyFlatData[float64](outs[i+1])
		for j := range want {
			if d := got[j] - want[j]; d > 1e-12 || d < -1e-12 {
				t.Fatalf("%s[%d] = %g, ReduceSum gives %g", name, j, got[j], want[j])
			}
		}
	}
}
