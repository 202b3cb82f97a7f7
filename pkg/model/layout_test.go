package model

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	. "github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

func TestValidate(t *testing.T) {
	for _, c := range []Config{textCfg, imgCfg, mmCfg, {Vocab: 2, Width: 1, Heads: 1, Blocks: 1, MLPDim: 1, MaxLen: 1}} {
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", c.ModelName(), err)
		}
	}
	bad := []struct {
		change func(*Config)
		want   string
	}{
		{func(c *Config) { c.Heads = 3 }, "Width 8 is not divisible by Heads 3"},
		{func(c *Config) { c.Heads = 0 }, "Heads must be positive"},
		{func(c *Config) { c.Width = 0 }, "Width must be positive"},
		{func(c *Config) { c.Blocks = 0 }, "Blocks must be at least 1"},
		{func(c *Config) { c.MLPDim = -1 }, "MLPDim must be positive"},
		{func(c *Config) { c.PatchSize = 3 }, "ImageSize 4 is not divisible by PatchSize 3"},
		{func(c *Config) { c.Channels = 0 }, "needs ImageSize, PatchSize and Channels all positive"},
		{func(c *Config) { c.Vocab, c.ImageSize, c.PatchSize, c.Channels = 0, 0, 0, 0 }, "the model has no input"},
		{func(c *Config) { c.Vocab = 1 }, "Vocab 1 holds only the padding token"},
		{func(c *Config) { c.MaxLen = 0 }, "MaxLen must be positive"},
		{func(c *Config) { c.Classes = -2 }, "Classes must be >= 0"},
		{func(c *Config) { c.Positions = "rotary" }, `Positions must be "learned" or "sinusoidal", got "rotary"`},
		{func(c *Config) { c.EndToken = 13 }, "EndToken 13 is not a token id"},
	}
	for _, b := range bad {
		c := mmCfg
		b.change(&c)
		wantErr(t, c.Validate(), b.want)
	}
	// Several problems are reported together.
	c := mmCfg
	c.Heads, c.Blocks = 3, 0
	err := c.Validate()
	wantErr(t, err, "Heads 3")
	wantErr(t, err, "Blocks must be")
}

// TestLayoutMatchesVariables builds every head of each tiny model and checks
// that Layout().Params names exactly the variables created, with their shapes.
func TestLayoutMatchesVariables(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	sinus := mmCfg
	sinus.Positions = Sinusoidal
	for _, c := range []Config{textCfg, imgCfg, mmCfg, sinus} {
		t.Run(c.ModelName()+"/"+c.positions(), func(t *testing.T) {
			scope := newCtx(t)
			var tokens [][]int32
			var images [][][][]float32
			if c.HasText() {
				tokens = [][]int32{{1, 2, 3}, {4, 5, 0}}
			}
			if c.HasImage() {
				images = randImages(r, 2, c)
			}
			mustRun(t, scope, tokens, images, func(scope *mlmodel.Scope, in Inputs) []*Node {
				out := []*Node{Classify(scope, c, nil, in)}
				if c.HasText() {
					out = append(out, LMLogits(scope, c, nil, in))
				}
				return out
			})
			got := map[string][]int{}
			for v := range scope.IterVariables() {
				if v.Path() == "/"+mlmodel.RNGStateVariableName {
					continue
				}
				got[v.Path()] = v.Shape().Dimensions
				if !v.HasValue() {
					t.Errorf("variable %s has no value after a run", v.Path())
				}
			}
			want := map[string][]int{}
			l := c.Layout()
			for _, p := range l.Params {
				if _, dup := want[p.Name]; dup {
					t.Errorf("Layout lists %s twice", p.Name)
				}
				want[p.Name] = p.Shape
			}
			for name, shape := range want {
				if g, ok := got[name]; !ok {
					t.Errorf("Layout lists %s %v, the graph did not create it", name, shape)
				} else if !slices.Equal(g, shape) {
					t.Errorf("%s: Layout says %v, graph created %v", name, shape, g)
				}
			}
			for name, shape := range got {
				if _, ok := want[name]; !ok {
					t.Errorf("graph created %s %v, Layout does not list it", name, shape)
				}
			}
			if n := scope.NumParameters() - 3; n != l.NumParams() { // #rngState is 3 uint64
				t.Errorf("context holds %d parameters, Layout.NumParams() = %d", n, l.NumParams())
			}
		})
	}
}

func TestLayoutSites(t *testing.T) {
	c := mmCfg
	l := c.Layout()
	want := []site.Site{
		{Name: "input/text", Kind: site.Input, In: 8, Out: 8, Modality: "text"},
		{Name: "input/image", Kind: site.Input, In: 8, Out: 8, Modality: "image"},
		{Name: "embed/image/patch", Kind: site.Linear, In: 2 * 2 * 3, Out: 8},
	}
	for i := 0; i < c.Blocks; i++ {
		for _, s := range []struct {
			name    string
			in, out int
		}{{"attn/q", 8, 8}, {"attn/k", 8, 8}, {"attn/v", 8, 8}, {"attn/o", 8, 8}, {"mlp/up", 8, 16}, {"mlp/down", 16, 8}} {
			want = append(want, site.Site{Name: fmt.Sprintf("block/%d/%s", i, s.name), Kind: site.Linear, In: s.in, Out: s.out})
		}
	}
	want = append(want, site.Site{Name: "head/cls", Kind: site.Linear, In: 8, Out: 3},
		site.Site{Name: "head/lm", Kind: site.Linear, In: 8, Out: 13})
	if !slices.Equal(l.Sites, want) {
		t.Errorf("sites:\n got %v\nwant %v", l.Sites, want)
	}
	if !slices.Equal(l.Modalities(), []string{"text", "image"}) {
		t.Errorf("modalities %v", l.Modalities())
	}
	if l.Width != 8 || l.Vocab != 13 || l.Blocks != 2 || l.Model != "tiny-mm" {
		t.Errorf("layout header %+v", l)
	}
	// Patterns from the method notes select what they should.
	qv, err := l.Select("block/*/attn/{q,v}")
	if err != nil || len(qv) != 4 {
		t.Errorf("block/*/attn/{q,v} selected %v, %v", qv, err)
	}
	// Text-only and image-only models declare only their own sites.
	if _, ok := textCfg.Layout().Site("input/image"); ok {
		t.Error("text-only model declares input/image")
	}
	if _, ok := textCfg.Layout().Site("embed/image/patch"); ok {
		t.Error("text-only model declares embed/image/patch")
	}
	il := imgCfg.Layout()
	if _, ok := il.Site("head/lm"); ok {
		t.Error("image-only model declares head/lm")
	}
	if _, ok := il.Site("input/text"); ok {
		t.Error("image-only model declares input/text")
	}
	noCls := textCfg
	noCls.Classes = 0
	if _, ok := noCls.Layout().Site("head/cls"); ok {
		t.Error("Classes=0 model declares head/cls")
	}
	// Every Linear site has weights and biases of its shape in Params.
	params := map[string][]int{}
	for _, p := range l.Params {
		params[p.Name] = p.Shape
	}
	for _, s := range l.Sites {
		if s.Kind != site.Linear {
			continue
		}
		if !slices.Equal(params[s.Scope()+"/weights"], []int{s.In, s.Out}) || !slices.Equal(params[s.Scope()+"/biases"], []int{s.Out}) {
			t.Errorf("site %s: weights %v biases %v", s.Name, params[s.Scope()+"/weights"], params[s.Scope()+"/biases"])
		}
	}
	if !slices.Equal(params["/embed/pos/embeddings"], []int{4 + 12, 8}) {
		t.Errorf("position table %v, want [patches+MaxLen, d] = [16 8]", params["/embed/pos/embeddings"])
	}
}

// TestHookSeesDeclaredSites checks that the model calls the hook at exactly
// the sites its Layout declares, with the declared kinds.
func TestHookSeesDeclaredSites(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []Config{textCfg, imgCfg, mmCfg} {
		t.Run(c.ModelName(), func(t *testing.T) {
			rec := &recorder{}
			var tokens [][]int32
			var images [][][][]float32
			if c.HasText() {
				tokens = [][]int32{{1, 2, 3}}
			}
			if c.HasImage() {
				images = randImages(r, 1, c)
			}
			mustRun(t, newCtx(t), tokens, images, func(scope *mlmodel.Scope, in Inputs) []*Node {
				out := []*Node{Classify(scope, c, rec, in)}
				if c.HasText() {
					out = append(out, LMLogits(scope, c, rec, in))
				}
				return out
			})
			want := map[string]site.Kind{}
			for _, s := range c.Layout().Sites {
				want[s.Name] = s.Kind
			}
			if !maps.Equal(rec.calls, want) {
				t.Errorf("hook called at %v\nlayout declares %v", rec.calls, want)
			}
		})
	}
}
