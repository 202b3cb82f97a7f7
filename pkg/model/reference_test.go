package model

import (
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// This file recomputes the model in plain Go float64 loops from the
// variables GoMLX created, and compares: patching, positions, masks, the
// attention scale, LayerNorm epsilon, GELU and pooling all have to agree.

type mat [][]float64

// ref is a float64 re-implementation of one configuration's forward pass.
type ref struct {
	c    Config
	vars map[string]*tensors.Tensor
}

func newRef(c Config, sc *mlmodel.Scope) *ref {
	r := &ref{c: c, vars: map[string]*tensors.Tensor{}}
	for v := range sc.IterVariables() {
		r.vars[v.Path()] = v.MustValue()
	}
	return r
}

func (r *ref) vec(name string) []float64 {
	t, ok := r.vars[name]
	if !ok {
		panic("reference: no variable " + name)
	}
	f := tensors.MustCopyFlatData[float32](t)
	out := make([]float64, len(f))
	for i, x := range f {
		out[i] = float64(x)
	}
	return out
}

func (r *ref) matrix(name string) mat {
	t := r.vars[name]
	rows, cols := t.Shape().Dimensions[0], t.Shape().Dimensions[1]
	v := r.vec(name)
	m := make(mat, rows)
	for i := range m {
		m[i] = v[i*cols : (i+1)*cols]
	}
	return m
}

// linear applies site's weights to each row of x.
func (r *ref) linear(siteName string, x mat) mat {
	w, b := r.matrix("/"+siteName+"/weights"), r.vec("/"+siteName+"/biases")
	out := make(mat, len(x))
	for i, row := range x {
		o := append([]float64{}, b...)
		for k, xv := range row {
			for j := range o {
				o[j] += xv * w[k][j]
			}
		}
		out[i] = o
	}
	return out
}

func (r *ref) layerNorm(scope string, x mat) mat {
	gain, offset := r.vec(scope+"/gain"), r.vec(scope+"/offset")
	out := make(mat, len(x))
	for i, row := range x {
		mean, vr := 0.0, 0.0
		for _, v := range row {
			mean += v
		}
		mean /= float64(len(row))
		for _, v := range row {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(row))
		o := make([]float64, len(row))
		for j, v := range row {
			o[j] = (v-mean)/math.Sqrt(vr+1e-5)*gain[j] + offset[j]
		}
		out[i] = o
	}
	return out
}

// refAttention is softmax(q·kᵀ·scale) restricted to allowed, times v, per head.
func refAttention(q, k, v mat, heads int, allowed [][]bool, scale func(dh int) float64) mat {
	s, d := len(q), len(q[0])
	dh := d / heads
	out := make(mat, s)
	for i := range out {
		out[i] = make([]float64, d)
	}
	for h := 0; h < heads; h++ {
		for i := 0; i < s; i++ {
			logits := make([]float64, s)
			mx := math.Inf(-1)
			for j := 0; j < s; j++ {
				if !allowed[i][j] {
					continue
				}
				dot := 0.0
				for e := h * dh; e < (h+1)*dh; e++ {
					dot += q[i][e] * k[j][e]
				}
				logits[j] = dot * scale(dh)
				mx = max(mx, logits[j])
			}
			sum := 0.0
			for j := 0; j < s; j++ {
				if allowed[i][j] {
					logits[j] = math.Exp(logits[j] - mx)
					sum += logits[j]
				}
			}
			for j := 0; j < s; j++ {
				if allowed[i][j] {
					for e := h * dh; e < (h+1)*dh; e++ {
						out[i][e] += logits[j] / sum * v[j][e]
					}
				}
			}
		}
	}
	return out
}

func sqrtScale(dh int) float64 { return 1 / math.Sqrt(float64(dh)) }

func add(a, b mat) mat {
	out := make(mat, len(a))
	for i := range a {
		out[i] = make([]float64, len(a[i]))
		for j := range a[i] {
			out[i][j] = a[i][j] + b[i][j]
		}
	}
	return out
}

// encode runs one example: tokens (may be nil) and image [H][W][C] (may be nil).
func (r *ref) encode(tokens []int32, image [][][]float32) (hidden mat, real []bool, patches int) {
	c := r.c
	var x mat
	var kinds []int
	var posRows []int
	if image != nil {
		p := c.PatchSize
		side := c.ImageSize / p
		var flatPatches mat
		for py := 0; py < side; py++ {
			for px := 0; px < side; px++ {
				var v []float64
				for y := 0; y < p; y++ {
					for xx := 0; xx < p; xx++ {
						for ch := 0; ch < c.Channels; ch++ {
							v = append(v, float64(image[py*p+y][px*p+xx][ch]))
						}
					}
				}
				flatPatches = append(flatPatches, v)
			}
		}
		emb := r.linear("embed/image/patch", flatPatches)
		for i, e := range emb {
			x = append(x, e)
			kinds = append(kinds, 0)
			posRows = append(posRows, i)
			real = append(real, true)
		}
		patches = len(emb)
	}
	if tokens != nil {
		table := r.matrix("/embed/text/embeddings")
		for i, tok := range tokens {
			x = append(x, append([]float64{}, table[tok]...))
			kinds = append(kinds, 1)
			posRows = append(posRows, c.Patches()+i)
			real = append(real, tok != 0)
		}
	}
	typ := r.matrix("/embed/type/embeddings")
	var pos mat
	if c.positions() == Learned {
		pos = r.matrix("/embed/pos/embeddings")
	} else {
		for _, row := range SinusoidalTable(0, c.NumPositions(), c.Width) {
			f := make([]float64, len(row))
			for i, v := range row {
				f[i] = float64(v)
			}
			pos = append(pos, f)
		}
	}
	for i := range x {
		for j := range x[i] {
			x[i][j] += pos[posRows[i]][j] + typ[kinds[i]][j]
		}
	}
	s := len(x)
	allowed := make([][]bool, s)
	for q := range allowed {
		allowed[q] = make([]bool, s)
		for k := range allowed[q] {
			allowed[q][k] = q == k || (real[k] && (k < patches || k <= q))
		}
	}
	for b := 0; b < c.Blocks; b++ {
		pre := "block/" + itoa(b)
		h := r.layerNorm("/"+pre+"/ln1", x)
		q, k, v := r.linear(pre+"/attn/q", h), r.linear(pre+"/attn/k", h), r.linear(pre+"/attn/v", h)
		x = add(x, r.linear(pre+"/attn/o", refAttention(q, k, v, c.Heads, allowed, sqrtScale)))
		h = r.layerNorm("/"+pre+"/ln2", x)
		up := r.linear(pre+"/mlp/up", h)
		for i := range up {
			for j, u := range up[i] {
				up[i][j] = u * 0.5 * (1 + math.Erf(u/math.Sqrt2))
			}
		}
		x = add(x, r.linear(pre+"/mlp/down", up))
	}
	return r.layerNorm("/final_ln", x), real, patches
}

func itoa(i int) string { return string(rune('0' + i)) }

func (r *ref) lmLogits(tokens []int32, image [][][]float32) mat {
	h, _, _ := r.encode(tokens, image)
	return r.linear("head/lm", h[len(h)-len(tokens):])
}

func (r *ref) classify(tokens []int32, image [][][]float32) []float64 {
	h, real, _ := r.encode(tokens, image)
	pooled := make([]float64, r.c.Width)
	n := 0.0
	for i, row := range h {
		if real[i] {
			n++
			for j, v := range row {
				pooled[j] += v
			}
		}
	}
	for j := range pooled {
		pooled[j] /= n
	}
	return r.linear("head/cls", mat{pooled})[0]
}

// TestMatchesReference compares LMLogits and Classify with the float64
// re-implementation on text-only, image-only and multimodal inputs, with
// learned and sinusoidal positions, on ragged (padded) batches.
func TestMatchesReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	sinus := mmCfg
	sinus.Positions = Sinusoidal
	for _, c := range []Config{textCfg, imgCfg, mmCfg, sinus} {
		t.Run(c.ModelName()+"/"+c.positions(), func(t *testing.T) {
			sc := newCtx(t)
			var tokens [][]int32
			var images [][][][]float32
			if c.HasText() {
				tokens = [][]int32{{3, 7, 1, 12, 5}, {4, 2, 0, 0, 0}}
			}
			if c.HasImage() {
				images = randImages(rnd, 2, c)
			}
			// Perturb every weight away from its init (gains 1, biases 0) so
			// that a wrongly placed gain or bias cannot hide.
			mustRun(t, sc, tokens, images, clsFn(c, nil))
			for v := range sc.IterVariables() {
				if v.Path() == "/"+mlmodel.RNGStateVariableName {
					continue
				}
				vals := tensors.MustCopyFlatData[float32](v.MustValue())
				for i := range vals {
					vals[i] += float32(rnd.NormFloat64() * 0.3)
				}
				v.MustSetValue(tensors.FromFlatDataAndDimensions(vals, v.Shape().Dimensions...))
			}
			fn := func(sc *mlmodel.Scope, in Inputs) []*Node {
				out := []*Node{Classify(sc, c, nil, in)}
				if c.HasText() {
					out = append(out, LMLogits(sc, c, nil, in))
				}
				return out
			}
			out := mustRun(t, sc, tokens, images, fn)
			r := newRef(c, sc)
			cls := flat(out[0])
			var lm []float32
			if c.HasText() {
				lm = flat(out[1])
			}
			worst := 0.0
			for b := 0; b < 2; b++ {
				var tok []int32
				var img [][][]float32
				if tokens != nil {
					tok = tokens[b]
				}
				if images != nil {
					img = images[b]
				}
				want := r.classify(tok, img)
				for j, w := range want {
					worst = max(worst, math.Abs(w-float64(cls[b*c.Classes+j])))
				}
				if tok == nil {
					continue
				}
				wantLM := r.lmLogits(tok, img)
				for p := range wantLM {
					if tok[p] == 0 {
						continue // outputs at padding positions are unspecified
					}
					for v, w := range wantLM[p] {
						worst = max(worst, math.Abs(w-float64(lm[(b*len(tok)+p)*c.Vocab+v])))
					}
				}
			}
			if worst > 1e-4 {
				t.Errorf("GoMLX vs float64 reference: max |diff| = %g", worst)
			}
			t.Logf("max |diff| vs reference: %.2g", worst)
		})
	}
}
