// Command gpuprobe checks that the backend $GOMLX_BACKEND names computes: it creates the
// backend, names its devices, and compares a matrix product with the pure-Go backend's. `go run
// ./kernel install -gpu` runs it (built with -tags xla) before registering the kernel with a
// CUDA plugin; the last line of its output is the summary install prints.
package main

import (
	"fmt"
	"math"
	"os"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/gobackend"
	"github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/backend"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gpuprobe:", err)
		os.Exit(1)
	}
}

func run() error {
	b, err := backend.New()
	if err != nil {
		return err
	}
	defer b.Finalize()
	fmt.Println("backend:", b.Description())
	for i := range b.NumDevices() {
		fmt.Printf("device %d: %s\n", i, b.DeviceDescription(compute.DeviceNum(i)))
	}
	cpu, err := gobackend.New("")
	if err != nil {
		return err
	}
	defer cpu.Finalize()
	const n = 256
	a := make([][]float32, n)
	m := make([][]float32, n)
	for i := range n {
		a[i], m[i] = make([]float32, n), make([]float32, n)
		for j := range n {
			a[i][j] = float32(math.Sin(float64(i*n+j))) / 16
			m[i][j] = float32(math.Cos(float64(i+2*j))) / 16
		}
	}
	product := func(be compute.Backend) []float32 {
		t := graph.MustExecOnce(be, func(x, y *graph.Node) *graph.Node { return graph.MatMul(x, y) }, a, m)
		return tensors.MustCopyFlatData[float32](t)
	}
	got, want := product(b), product(cpu)
	worst := 0.0
	for i := range want {
		worst = max(worst, math.Abs(float64(got[i]-want[i])))
	}
	// TF32 products (XLA's default on recent GPUs) round the inputs to 10 mantissa bits.
	if worst > 1e-2 {
		return fmt.Errorf("a %d×%d×%d matrix product differs from the CPU's by %.3g", n, n, n, worst)
	}
	fmt.Printf("%s — %d device(s): a %d×%d×%d matrix product matches the CPU's within %.2g\n", backend.Describe(), b.NumDevices(), n, n, n, worst)
	return nil
}
