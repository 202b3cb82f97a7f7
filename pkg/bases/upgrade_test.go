package bases

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/model"
)

// TestOutputsMatchGoMLXv026 checks that the shipped bases compute what they
// computed when they were trained. testdata/v026_logits.json holds every
// 97th next-token logit of each base on a fixed batch (two rows of MaxLen
// tokens, the second ending in padding; fixed images for the VLMs), computed
// by peftlab at commit 88d5108 on GoMLX v0.26.0, before the move to v0.28.
// After the move the logits must agree to float32 precision.
func TestOutputsMatchGoMLXv026(t *testing.T) {
	raw, err := os.ReadFile("testdata/v026_logits.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string][]float32
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	be := backendtest.Backend(t)
	for _, name := range Names() {
		base, err := Load(name)
		if err != nil {
			t.Fatal(err)
		}
		c, scope := base.Config, base.Scope
		const b = 2
		n := c.MaxLen
		toks := make([]int32, b*n)
		for i := range toks {
			toks[i] = int32(1 + (i*7919)%(c.Vocab-1))
		}
		toks[b*n-1], toks[b*n-2] = 0, 0
		args := []any{tensors.FromFlatDataAndDimensions(toks, b, n)}
		if c.HasImage() {
			px := make([]float32, b*c.ImageSize*c.ImageSize*c.Channels)
			for i := range px {
				px[i] = float32((i*37)%101) / 100
			}
			args = append(args, tensors.FromFlatDataAndDimensions(px, b, c.ImageSize, c.ImageSize, c.Channels))
		}
		out, err := mlmodel.ExecOnce(be, scope.Store(), func(scope *mlmodel.Scope, in []*Node) *Node {
			x := model.Inputs{Tokens: in[0]}
			if len(in) > 1 {
				x.Images = in[1]
			}
			return model.LMLogits(scope, c, nil, x)
		}, args...)
		if err != nil {
			t.Fatal(err)
		}
		all := tensors.MustCopyFlatData[float32](out)
		var got []float32
		for i := 0; i < len(all); i += 97 {
			got = append(got, all[i])
		}
		if len(got) != len(want[name]) {
			t.Fatalf("%s: %d logits kept, the v0.26 file has %d", name, len(got), len(want[name]))
		}
		worst := 0.0
		for i := range got {
			d := math.Abs(float64(got[i]-want[name][i])) / (1 + math.Abs(float64(want[name][i])))
			worst = math.Max(worst, d)
		}
		if worst > 1e-5 {
			t.Errorf("%s: logits moved since GoMLX v0.26: worst relative difference %.3g", name, worst)
		}
		t.Logf("%s: %d logits, worst relative difference from v0.26 %.2g", name, len(got), worst)
	}
}
