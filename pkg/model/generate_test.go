package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// greedyCheck verifies out against LMLogits: run on prompt+out (right
// padded), the argmax over non-pad tokens at the position before each new
// token must be that token.
func greedyCheck(t *testing.T, scope *mlmodel.Scope, c Config, hook site.Hook, prompts, out [][]int32, images [][][][]float32) {
	t.Helper()
	longest := 0
	for i := range prompts {
		longest = max(longest, len(prompts[i])+len(out[i]))
	}
	seqs := make([][]int32, len(prompts))
	for i := range prompts {
		seqs[i] = make([]int32, longest)
		copy(seqs[i], append(slices.Clone(prompts[i]), out[i]...))
	}
	logits := flat(mustRun(t, scope, seqs, images, lmFn(c, hook))[0])
	for i := range prompts {
		for j, tok := range out[i] {
			p := len(prompts[i]) - 1 + j
			row := logits[(i*longest+p)*c.Vocab : (i*longest+p+1)*c.Vocab]
			best, bestV := 1, float32(math.Inf(-1))
			for v := 1; v < c.Vocab; v++ {
				if row[v] > bestV {
					best, bestV = v, row[v]
				}
			}
			if int32(best) != tok {
				t.Errorf("example %d new token %d: Generate gave %d, argmax of LMLogits is %d", i, j, tok, best)
			}
		}
	}
}

func TestGenerate(t *testing.T) {
	rnd := rand.New(rand.NewPCG(17, 18))
	b := newBackend(t)
	prompts := [][]int32{{3, 4}, {5, 6, 7, 8}, {9}}

	t.Run("multimodal", func(t *testing.T) {
		c := mmCfg
		scope := newCtx(t)
		images := randImages(rnd, 3, c)
		imgT := tensors.FromValue(images)
		out, err := Generate(b, scope, c, nil, prompts, imgT, 5)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Generate(b, scope, c, nil, prompts, imgT, 5)
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if len(out[i]) != 5 {
				t.Errorf("example %d: %d new tokens, want 5", i, len(out[i]))
			}
			if !slices.Equal(out[i], again[i]) {
				t.Errorf("example %d: not deterministic: %v then %v", i, out[i], again[i])
			}
			if slices.Contains(out[i], 0) {
				t.Errorf("example %d generated padding: %v", i, out[i])
			}
		}
		greedyCheck(t, scope, c, nil, prompts, out, images)

		// An end token stops an example at its first occurrence, unseen.
		end := out[1][2]
		c.EndToken = int(end)
		stopped, err := Generate(b, scope, c, nil, prompts, imgT, 5)
		if err != nil {
			t.Fatal(err)
		}
		for i := range out {
			want := out[i]
			if k := slices.Index(out[i], end); k >= 0 {
				want = out[i][:k]
			}
			if !slices.Equal(stopped[i], want) {
				t.Errorf("EndToken %d, example %d: got %v want %v (without end token: %v)", end, i, stopped[i], want, out[i])
			}
		}
	})

	t.Run("text with prepending hook", func(t *testing.T) {
		c := textCfg
		scope := newCtx(t)
		hook := &recorder{prepend: 2}
		out, err := Generate(b, scope, c, hook, prompts, nil, 4)
		if err != nil {
			t.Fatal(err)
		}
		greedyCheck(t, scope, c, hook, prompts, out, nil)
		// 2 inserted + longest 4 + 7 - 1 = 12 = MaxLen fits; one more does not.
		if _, err := Generate(b, scope, c, hook, prompts, nil, 7); err != nil {
			t.Errorf("buffer of exactly MaxLen: %v", err)
		}
		_, err = Generate(b, scope, c, hook, prompts, nil, 8)
		wantErr(t, err, "exceeds MaxLen")
	})

	t.Run("errors", func(t *testing.T) {
		scope := newCtx(t)
		c := textCfg
		out, err := Generate(b, scope, c, nil, prompts, nil, 0)
		if err != nil || len(out) != 3 || len(out[0]) != 0 {
			t.Errorf("maxNew 0: %v, %v", out, err)
		}
		_, err = Generate(b, scope, c, nil, [][]int32{{1}, {}}, nil, 2)
		wantErr(t, err, "prompt 1 is empty")
		_, err = Generate(b, scope, c, nil, [][]int32{{1, 0, 2}}, nil, 2)
		wantErr(t, err, "holds token 0")
		_, err = Generate(b, scope, c, nil, [][]int32{{13}}, nil, 2)
		wantErr(t, err, "holds token 13, outside the vocabulary [1, 13)")
		_, err = Generate(b, scope, c, nil, nil, nil, 2)
		wantErr(t, err, "no prompts")
		_, err = Generate(b, scope, c, nil, [][]int32{{1}}, nil, 13)
		wantErr(t, err, "exceed MaxLen 12")
		_, err = Generate(b, scope, imgCfg, nil, [][]int32{{1}}, nil, 2)
		wantErr(t, err, "has no text output")
		_, err = Generate(b, scope, c, nil, [][]int32{{1}}, tensors.FromValue(randImages(rnd, 1, mmCfg)), 2)
		wantErr(t, err, "has no image input")
		_, err = Generate(b, scope, mmCfg, nil, [][]int32{{1}, {2}}, tensors.FromValue(randImages(rnd, 1, mmCfg)), 2)
		wantErr(t, err, "one image per prompt")
	})
}
