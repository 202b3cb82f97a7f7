package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// TestPaddingInvariance: extra pad tokens on the right change no Classify
// logit, and no LMLogits at real positions; a planted change (a pad turned
// into a real token) does change the class logits.
func TestPaddingInvariance(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	for _, c := range []Config{textCfg, mmCfg} {
		t.Run(c.ModelName(), func(t *testing.T) {
			scope := newCtx(t)
			var images [][][][]float32
			if c.HasImage() {
				images = randImages(rnd, 2, c)
			}
			short := [][]int32{{3, 4, 5, 0}, {6, 7, 8, 9}}
			long := [][]int32{{3, 4, 5, 0, 0, 0, 0}, {6, 7, 8, 9, 0, 0, 0}}
			both := func(scope *mlmodel.Scope, in Inputs) []*Node {
				return []*Node{Classify(scope, c, nil, in), LMLogits(scope, c, nil, in)}
			}
			a := mustRun(t, scope, short, images, both)
			b := mustRun(t, scope, long, images, both)
			if d := maxDiff(flat(a[0]), flat(b[0])); d > 1e-5 {
				t.Errorf("Classify changed by %g when padding was added", d)
			}
			la, lb := flat(a[1]), flat(b[1])
			v := c.Vocab
			for ex, toks := range short {
				for p, tok := range toks {
					if tok == 0 {
						continue
					}
					x := la[(ex*4+p)*v : (ex*4+p+1)*v]
					y := lb[(ex*7+p)*v : (ex*7+p+1)*v]
					if d := maxDiff(x, y); d > 1e-5 {
						t.Errorf("LMLogits example %d position %d changed by %g when padding was added", ex, p, d)
					}
				}
			}
			planted := [][]int32{{3, 4, 5, 0, 0, 2, 0}, {6, 7, 8, 9, 0, 0, 0}}
			p := mustRun(t, scope, planted, images, both)
			if d := maxDiff(flat(a[0])[:c.Classes], flat(p[0])[:c.Classes]); d < 1e-4 {
				t.Errorf("a real token after padding did not change Classify (diff %g): the mask test is blind", d)
			}
		})
	}
}

// TestCausal: changing text token j changes no LMLogits before j but does
// change position j; changing the image changes the text logits; changing
// text never changes the image patches' hidden states.
func TestCausal(t *testing.T) {
	c := mmCfg
	rnd := rand.New(rand.NewPCG(9, 10))
	scope := newCtx(t)
	images := randImages(rnd, 1, c)
	base := []int32{3, 4, 5, 6, 7, 8}
	for j := range base {
		changed := slices.Clone(base)
		changed[j] = 11
		enc := func(scope *mlmodel.Scope, in Inputs) []*Node {
			h, _ := Encode(scope, c, nil, in)
			return []*Node{LMLogits(scope, c, nil, in), h}
		}
		a := mustRun(t, scope, [][]int32{base}, images, enc)
		b := mustRun(t, scope, [][]int32{changed}, images, enc)
		la, lb := flat(a[0]), flat(b[0])
		v := c.Vocab
		for p := range base {
			d := maxDiff(la[p*v:(p+1)*v], lb[p*v:(p+1)*v])
			if p < j && d > 1e-6 {
				t.Errorf("changing token %d changed the logits at earlier position %d by %g", j, p, d)
			}
			if p == j && d < 1e-4 {
				t.Errorf("changing token %d did not change its own logits", j)
			}
		}
		patchHidden := c.Patches() * c.Width
		if d := maxDiff(flat(a[1])[:patchHidden], flat(b[1])[:patchHidden]); d > 1e-6 {
			t.Errorf("changing text token %d changed the image patches' hidden states by %g", j, d)
		}
	}
	other := randImages(rnd, 1, c)
	a := mustRun(t, scope, [][]int32{base}, images, lmFn(c, nil))
	b := mustRun(t, scope, [][]int32{base}, other, lmFn(c, nil))
	if d := maxDiff(flat(a[0])[:c.Vocab], flat(b[0])[:c.Vocab]); d < 1e-4 {
		t.Errorf("the first text position does not see the image (diff %g)", d)
	}
}

// TestAttendScaling checks Attend against a hand computation of
// softmax(q·kᵀ/√dh)·v with a mask, and that the 1/dh scaling GoMLX's own
// MultiHeadAttention uses would be caught.
func TestAttendScaling(t *testing.T) {
	rnd := rand.New(rand.NewPCG(11, 12))
	const b, s, h, dh = 2, 3, 2, 4
	randT := func() [][][][]float32 {
		x := make([][][][]float32, b)
		for i := range x {
			x[i] = make([][][]float32, s)
			for j := range x[i] {
				x[i][j] = make([][]float32, h)
				for k := range x[i][j] {
					x[i][j][k] = make([]float32, dh)
					for e := range x[i][j][k] {
						x[i][j][k][e] = float32(rnd.NormFloat64() * 2)
					}
				}
			}
		}
		return x
	}
	q, k, v := randT(), randT(), randT()
	allowed := [][][]bool{
		{{true, false, false}, {true, true, false}, {true, true, true}},
		{{true, true, true}, {false, true, true}, {true, false, true}},
	}
	out, err := mlmodel.ExecOnce(newBackend(t), mlmodel.NewStore(), func(scope *mlmodel.Scope, q, k, v, m *Node) *Node {
		return Attend(q, k, v, m)
	}, q, k, v, allowed)
	if err != nil {
		t.Fatal(err)
	}
	got := flat(out)
	toMat := func(x [][][][]float32, bi int) mat {
		m := make(mat, s)
		for i := range m {
			for hh := 0; hh < h; hh++ {
				for _, e := range x[bi][i][hh] {
					m[i] = append(m[i], float64(e))
				}
			}
		}
		return m
	}
	diff := func(scale func(int) float64) float64 {
		worst := 0.0
		for bi := 0; bi < b; bi++ {
			want := refAttention(toMat(q, bi), toMat(k, bi), toMat(v, bi), h, allowed[bi], scale)
			for i := range want {
				for e, w := range want[i] {
					worst = max(worst, math.Abs(w-float64(got[(bi*s+i)*h*dh+e])))
				}
			}
		}
		return worst
	}
	if d := diff(sqrtScale); d > 1e-5 {
		t.Errorf("Attend vs hand computation with 1/sqrt(dh): max diff %g", d)
	}
	if d := diff(func(dh int) float64 { return 1 / float64(dh) }); d < 1e-2 {
		t.Errorf("Attend also matches 1/dh scaling (diff %g): the check cannot tell the scales apart", d)
	}
}

func TestAttentionMask(t *testing.T) {
	mask := [][]bool{{true, true, true, true, false}}
	out, err := mlmodel.ExecOnce(newBackend(t), mlmodel.NewStore(), func(scope *mlmodel.Scope, m *Node) *Node {
		return AttentionMask(m, 2)
	}, mask)
	if err != nil {
		t.Fatal(err)
	}
	got := out.Value().([][][]bool)[0]
	// Positions 0,1 are patches, 2,3 text, 4 padding.
	want := [][]bool{
		{true, true, false, false, false},
		{true, true, false, false, false},
		{true, true, true, false, false},
		{true, true, true, true, false},
		{true, true, true, true, true}, // padding sees everything real before it and itself
	}
	for q := range want {
		if !slices.Equal(got[q], want[q]) {
			t.Errorf("query %d: got %v want %v", q, got[q], want[q])
		}
	}
}

func TestSinusoidalTable(t *testing.T) {
	tab := SinusoidalTable(0, 3, 6)
	if tab[0][0] != 0 || tab[0][1] != 1 {
		t.Errorf("position 0 = %v, want sin 0 = 0, cos 0 = 1", tab[0])
	}
	if want := float32(math.Sin(2)); tab[2][0] != want {
		t.Errorf("(2, 0) = %v want %v", tab[2][0], want)
	}
	if want := float32(math.Cos(1 * math.Pow(10000, -2.0/6))); tab[1][3] != want {
		t.Errorf("(1, 3) = %v want %v", tab[1][3], want)
	}
	if later := SinusoidalTable(2, 1, 6); !slices.Equal(later[0], tab[2]) {
		t.Errorf("rows from an offset differ: %v vs %v", later[0], tab[2])
	}
}

// TestPositionsKinds: both position kinds run, sinusoidal has no table, and
// they give different outputs from the same other weights.
func TestPositionsKinds(t *testing.T) {
	tokens := [][]int32{{1, 2, 3, 4}}
	var outs [][]float32
	for _, kind := range []string{"", Learned, Sinusoidal} {
		c := textCfg
		c.Positions = kind
		scope := newCtx(t)
		out := mustRun(t, scope, tokens, nil, lmFn(c, nil))
		if !slices.Equal(out[0].Shape().Dimensions, []int{1, 4, c.Vocab}) {
			t.Fatalf("%q: logits %s", kind, out[0].Shape())
		}
		has := scope.Store().GetVariable(mlmodel.JoinPath("/embed/pos", "embeddings")) != nil
		if has != (kind != Sinusoidal) {
			t.Errorf("positions %q: position table present = %v", kind, has)
		}
		for _, x := range flat(out[0]) {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("positions %q: non-finite logit", kind)
			}
		}
		outs = append(outs, flat(out[0]))
	}
	if maxDiff(outs[0], outs[1]) != 0 {
		t.Error("empty Positions is not the learned default")
	}
}

// TestPrependingHook: a text hook that inserts k tokens leaves LMLogits at
// [B, T, V], gives positions to the inserted tokens, and fails clearly when
// the result exceeds MaxLen.
func TestPrependingHook(t *testing.T) {
	rnd := rand.New(rand.NewPCG(13, 14))
	c := mmCfg
	scope := newCtx(t)
	tokens := [][]int32{{3, 4, 5}, {6, 0, 0}}
	images := randImages(rnd, 2, c)
	hook := &recorder{prepend: 4}
	out := mustRun(t, scope, tokens, images, func(scope *mlmodel.Scope, in Inputs) []*Node {
		h, m := Encode(scope, c, hook, in)
		return []*Node{LMLogits(scope, c, hook, in), Classify(scope, c, hook, in), h, m}
	})
	if got := out[0].Shape().Dimensions; !slices.Equal(got, []int{2, 3, c.Vocab}) {
		t.Errorf("LMLogits with 4 prepended tokens: %v, want [2 3 %d]", got, c.Vocab)
	}
	if got := out[1].Shape().Dimensions; !slices.Equal(got, []int{2, c.Classes}) {
		t.Errorf("Classify: %v", got)
	}
	if got := out[2].Shape().Dimensions; !slices.Equal(got, []int{2, c.Patches() + 4 + 3, c.Width}) {
		t.Errorf("Encode hidden: %v", got)
	}
	// The 4 identical inserted vectors get different positions, hence
	// different hidden states.
	h := flat(out[2])
	row := func(p int) []float32 { return h[(c.Patches()+p)*c.Width : (c.Patches()+p+1)*c.Width] }
	if maxDiff(row(0), row(1)) < 1e-4 {
		t.Error("inserted tokens got no positions: identical inputs, identical hidden states")
	}
	mask := out[3].Value().([][]bool)[1]
	// 4 patches, 4 inserted tokens, then the example's tokens {6, 0, 0}.
	if want := []bool{true, true, true, true, true, true, true, true, true, false, false}; !slices.Equal(mask, want) {
		t.Errorf("mask %v want %v", mask, want)
	}

	long := &recorder{prepend: c.MaxLen}
	_, err := run(t, newCtx(t), tokens, images, lmFn(c, long))
	wantErr(t, err, "exceeds MaxLen 12")
}

func TestInputErrors(t *testing.T) {
	rnd := rand.New(rand.NewPCG(15, 16))
	_, err := run(t, newCtx(t), nil, randImages(rnd, 1, mmCfg), lmFn(mmCfg, nil))
	wantErr(t, err, "LMLogits needs text")
	_, err = run(t, newCtx(t), [][]int32{{1}}, nil, clsFn(imgCfg, nil))
	wantErr(t, err, "has no text input")
	_, err = run(t, newCtx(t), nil, randImages(rnd, 1, mmCfg), clsFn(textCfg, nil))
	wantErr(t, err, "has no image input")
	small := mmCfg
	small.ImageSize = 2
	_, err = run(t, newCtx(t), nil, randImages(rnd, 1, small), clsFn(mmCfg, nil))
	wantErr(t, err, "images must be [batch, 4, 4, 3] Float32")
	_, err = run(t, newCtx(t), [][]int32{{1}, {2}}, randImages(rnd, 1, mmCfg), clsFn(mmCfg, nil))
	wantErr(t, err, "tokens have batch size 2 but images 1")
	noCls := textCfg
	noCls.Classes = 0
	_, err = run(t, newCtx(t), [][]int32{{1}}, nil, clsFn(noCls, nil))
	wantErr(t, err, "no classification head")
	bad := textCfg
	bad.Heads = 3
	_, err = run(t, newCtx(t), [][]int32{{1}}, nil, lmFn(bad, nil))
	wantErr(t, err, "not divisible by Heads 3")
	_, err = run(t, newCtx(t), [][]int32{make([]int32, 13)}, nil, lmFn(textCfg, nil))
	wantErr(t, err, "exceeds MaxLen")
	_, err = mlmodel.ExecOnce(newBackend(t), newCtx(t).Store(), func(scope *mlmodel.Scope, g *Graph) *Node {
		x := Zeros(g, shapes.Make(dtypes.Float32, 2, 3))
		h, _ := Encode(scope, textCfg, nil, Inputs{Tokens: x})
		return h
	})
	wantErr(t, err, "tokens must be [batch, seq] Int32")
}
