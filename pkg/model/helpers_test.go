package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/site"
)

// newBackend returns the test binary's shared backend (fast gradients installed).
func newBackend(t testing.TB) compute.Backend { return backendtest.Backend(t) }

// Tiny configurations: text-only, image-only and multimodal.
var (
	textCfg = Config{Name: "tiny-text", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12, Classes: 3}
	imgCfg  = Config{Name: "tiny-image", Width: 8, Heads: 2, Blocks: 1, MLPDim: 12, ImageSize: 4, PatchSize: 2,
		Channels: 3, Classes: 3}
	mmCfg = Config{Name: "tiny-mm", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12, ImageSize: 4,
		PatchSize: 2, Channels: 3, Classes: 3}
)

// newCtx returns a fresh context with a fixed seed.
func newCtx(t testing.TB) *mlmodel.Scope {
	t.Helper()
	scope := mlmodel.NewStore().RootScope()
	if err := scope.Store().SetRNGStateFromSeed(7); err != nil {
		t.Fatal(err)
	}
	return scope
}

// randImages returns [b, size, size, ch] pixels in [0, 1).
func randImages(r *rand.Rand, b int, c Config) [][][][]float32 {
	out := make([][][][]float32, b)
	for i := range out {
		out[i] = make([][][]float32, c.ImageSize)
		for y := range out[i] {
			out[i][y] = make([][]float32, c.ImageSize)
			for x := range out[i][y] {
				out[i][y][x] = make([]float32, c.Channels)
				for ch := range out[i][y][x] {
					out[i][y][x][ch] = r.Float32()
				}
			}
		}
	}
	return out
}

// run builds fn over tokens and images (either may be nil) and returns its
// outputs, or the error building or running it gave.
func run(t testing.TB, scope *mlmodel.Scope, tokens [][]int32, images [][][][]float32,
	fn func(scope *mlmodel.Scope, in Inputs) []*Node) (out []*tensors.Tensor, err error) {
	t.Helper()
	var args []any
	if tokens != nil {
		args = append(args, tokens)
	}
	if images != nil {
		args = append(args, images)
	}
	exec, err := mlmodel.NewExec(newBackend(t), scope.Store(), func(scope *mlmodel.Scope, nodes []*Node) []*Node {
		var in Inputs
		i := 0
		if tokens != nil {
			in.Tokens = nodes[i]
			i++
		}
		if images != nil {
			in.Images = nodes[i]
		}
		return fn(scope, in)
	})
	if err != nil {
		return nil, err
	}
	defer exec.Finalize()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return exec.Exec(args...)
}

// mustRun is run failing the test on error.
func mustRun(t testing.TB, scope *mlmodel.Scope, tokens [][]int32, images [][][][]float32,
	fn func(scope *mlmodel.Scope, in Inputs) []*Node) []*tensors.Tensor {
	t.Helper()
	out, err := run(t, scope, tokens, images, fn)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lmFn(c Config, hook site.Hook) func(*mlmodel.Scope, Inputs) []*Node {
	return func(scope *mlmodel.Scope, in Inputs) []*Node { return []*Node{LMLogits(scope, c, hook, in)} }
}

func clsFn(c Config, hook site.Hook) func(*mlmodel.Scope, Inputs) []*Node {
	return func(scope *mlmodel.Scope, in Inputs) []*Node { return []*Node{Classify(scope, c, hook, in)} }
}

func flat(t *tensors.Tensor) []float32 { return tensors.MustCopyFlatData[float32](t) }

// maxDiff returns the largest absolute difference of a and b.
func maxDiff(a, b []float32) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	d := 0.0
	for i := range a {
		d = max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}

func wantErr(t *testing.T, err error, substr string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", substr)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
}

// recorder is a hook that records the sites it is called at and changes
// nothing, unless prepend > 0: then it prepends that many copies of a
// constant vector to the text input.
type recorder struct {
	mu      sync.Mutex
	calls   map[string]site.Kind
	prepend int
}

func (r *recorder) note(s site.Site, k site.Kind) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.calls == nil {
		r.calls = map[string]site.Kind{}
	}
	r.calls[s.Name] = k
}

func (r *recorder) Input(scope *mlmodel.Scope, s site.Site, x, mask *Node) (*Node, *Node) {
	r.note(s, site.Input)
	if r.prepend == 0 || s.Modality != "text" {
		return x, mask
	}
	b, d := x.Shape().Dimensions[0], x.Shape().Dimensions[2]
	g := x.Graph()
	extra := MulScalar(Ones(g, shapes.Make(dtypes.Float32, b, r.prepend, d)), 0.5)
	trues := Ones(g, shapes.Make(dtypes.Bool, b, r.prepend))
	return Concatenate([]*Node{extra, x}, 1), Concatenate([]*Node{trues, mask}, 1)
}

func (r *recorder) Linear(scope *mlmodel.Scope, s site.Site, x, y *Node) *Node {
	r.note(s, site.Linear)
	return y
}
