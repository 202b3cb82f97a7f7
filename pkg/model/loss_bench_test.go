package model

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/backend"
)

// benchNLL times NLL's loss on the text base's logits ([2048, 2048]: 16×128
// tokens over a 2048-token vocabulary), alone or with its gradient
// (bench/NOTES.md, section 10).
func benchNLL(b *testing.B, grad bool) {
	be, err := backend.New()
	if err != nil {
		b.Fatal(err)
	}
	backend.InstallGradients()
	const n, k = 2048, 2048
	r := rand.New(rand.NewPCG(1, 2))
	logits, targets := make([]float32, n*k), make([]int32, n)
	for i := range logits {
		logits[i] = 4 * r.Float32()
	}
	for i := range targets {
		targets[i] = int32(r.IntN(k))
	}
	lt, tt := tensors.FromFlatDataAndDimensions(logits, n, k), tensors.FromFlatDataAndDimensions(targets, n)
	exec, err := NewExec(be, func(l, t *Node) []*Node {
		loss := ReduceAllSum(NLL(l, t))
		if !grad {
			return []*Node{loss}
		}
		return []*Node{loss, Gradient(loss, l)[0]}
	})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		out, err := exec.Exec(lt, tt)
		if err != nil {
			b.Fatal(err)
		}
		for _, o := range out {
			o.FinalizeAll()
		}
	}
}

func BenchmarkNLL(b *testing.B)         { benchNLL(b, false) }
func BenchmarkNLLGradient(b *testing.B) { benchNLL(b, true) }
