package model

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/site"
)

// Names of the sites and weight scopes. The graph code and Layout both use
// these, so the declared layout cannot drift from the variables built.
const (
	SiteTextInput  = "input/text"
	SiteImageInput = "input/image"
	SitePatch      = "embed/image/patch"
	SiteCls        = "head/cls"
	SiteLM         = "head/lm"

	scopeTextEmbed = "embed/text"
	scopePos       = "embed/pos"
	scopeType      = "embed/type"
	scopeFinalLN   = "final_ln"

	varEmbeddings = "embeddings"
	varWeights    = "weights"
	varBiases     = "biases"
	varGain       = "gain"
	varOffset     = "offset"
)

// Type-embedding rows: every image patch gets row typeImage added, every text
// position (prompt tokens included) row typeText.
const (
	typeImage = 0
	typeText  = 1
)

// BlockSite returns the name of a site inside block i, e.g.
// BlockSite(3, "attn/q") = "block/3/attn/q".
func BlockSite(i int, name string) string { return fmt.Sprintf("block/%d/%s", i, name) }

// blockLinears are the Linear sites of every block, in order.
var blockLinears = []string{"attn/q", "attn/k", "attn/v", "attn/o", "mlp/up", "mlp/down"}

// blockSiteShape returns In and Out of one of blockLinears.
func (c Config) blockSiteShape(name string) (in, out int) {
	switch name {
	case "mlp/up":
		return c.Width, c.MLPDim
	case "mlp/down":
		return c.MLPDim, c.Width
	}
	return c.Width, c.Width
}

func (c Config) linearSite(name string, in, out int) site.Site {
	return site.Site{Name: name, Kind: site.Linear, In: in, Out: out}
}

// textInputSite and imageInputSite are the two Input sites.
func (c Config) textInputSite() site.Site {
	return site.Site{Name: SiteTextInput, Kind: site.Input, In: c.Width, Out: c.Width, Modality: "text"}
}

func (c Config) imageInputSite() site.Site {
	return site.Site{Name: SiteImageInput, Kind: site.Input, In: c.Width, Out: c.Width, Modality: "image"}
}

// Layout lists every site and every base weight of the model, computed from
// the configuration alone (no graph, no allocation). Sites come in the order
// data flows: the input sites (text, image), the patch projection, each block's q, k, v, o, up,
// down, then the heads. Params follow the same order, with the embedding
// tables first and each LayerNorm before the sites it feeds.
//
// Params holds exactly the variables the model functions create (the GoMLX
// context's own "/#rngState" aside). Layout of an invalid Config describes
// whatever it can; call Validate first.
func (c Config) Layout() site.Layout {
	l := site.Layout{Model: c.ModelName(), Width: c.Width, Vocab: c.Vocab, Blocks: c.Blocks, MaxLen: c.MaxLen}
	d := c.Width
	param := func(name string, shape ...int) {
		l.Params = append(l.Params, site.Param{Name: "/" + name, Shape: shape})
	}
	linear := func(s site.Site) {
		param(s.Name+"/"+varWeights, s.In, s.Out)
		param(s.Name+"/"+varBiases, s.Out)
	}
	layerNorm := func(scope string) {
		param(scope+"/"+varGain, d)
		param(scope+"/"+varOffset, d)
	}

	if c.HasText() {
		l.Sites = append(l.Sites, c.textInputSite())
	}
	if c.HasImage() {
		l.Sites = append(l.Sites, c.imageInputSite())
		l.Sites = append(l.Sites, c.linearSite(SitePatch, c.PatchDim(), d))
	}
	if c.HasText() {
		param(scopeTextEmbed+"/"+varEmbeddings, c.Vocab, d)
	}
	if c.HasImage() {
		linear(c.linearSite(SitePatch, c.PatchDim(), d))
	}
	if c.positions() == Learned {
		param(scopePos+"/"+varEmbeddings, c.NumPositions(), d)
	}
	param(scopeType+"/"+varEmbeddings, 2, d)

	for i := 0; i < c.Blocks; i++ {
		layerNorm(BlockSite(i, "ln1"))
		for _, name := range blockLinears {
			if name == "mlp/up" {
				layerNorm(BlockSite(i, "ln2"))
			}
			in, out := c.blockSiteShape(name)
			s := c.linearSite(BlockSite(i, name), in, out)
			l.Sites = append(l.Sites, s)
			linear(s)
		}
	}
	layerNorm(scopeFinalLN)
	if c.Classes > 0 {
		s := c.linearSite(SiteCls, d, c.Classes)
		l.Sites = append(l.Sites, s)
		linear(s)
	}
	if c.HasText() {
		s := c.linearSite(SiteLM, d, c.Vocab)
		l.Sites = append(l.Sites, s)
		linear(s)
	}
	return l
}

// siteOf returns the layout's site with the given name; it panics when the
// model code asks for a site its own layout does not declare (a bug here).
func (c Config) siteOf(name string) site.Site {
	switch name {
	case SiteTextInput:
		return c.textInputSite()
	case SiteImageInput:
		return c.imageInputSite()
	case SitePatch:
		return c.linearSite(SitePatch, c.PatchDim(), c.Width)
	case SiteCls:
		return c.linearSite(SiteCls, c.Width, c.Classes)
	case SiteLM:
		return c.linearSite(SiteLM, c.Width, c.Vocab)
	}
	panic(fmt.Sprintf("model: internal error, unknown site %q", name))
}
