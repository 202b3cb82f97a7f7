package model

import (
	"fmt"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/model/initializer"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/site"
)

// Embedding tables are read with Gather, never Slice: GoMLX's Slice gradient
// needs Pad, which the pure-Go backend lacks.

// table returns the [rows, d] embedding variable "embeddings" in scope.
func table(root *mlmodel.Scope, scope string, rows, d int, g *Graph) *Node {
	sc := root
	for _, s := range splitScope(scope) {
		sc = sc.At("%s", s)
	}
	return sc.WithInitializer(initializer.RandomNormalFn(root, embedStddev)).
		VariableWithShape(varEmbeddings, shapes.Make(f32, rows, d)).NodeValue(g)
}

func splitScope(scope string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(scope); i++ {
		if i == len(scope) || scope[i] == '/' {
			if i > start {
				out = append(out, scope[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// rows gathers n consecutive rows of t starting at first, as [n, d].
func rows(t *Node, first, n int) *Node {
	idx := AddScalar(Iota(t.Graph(), shapes.Make(dtypes.Int32, n, 1), 0), first)
	return Gather(t, idx)
}

// TokenEmbed looks tokens [B, T] Int32 up in the text embedding table
// /embed/text/embeddings, giving [B, T, d].
func TokenEmbed(root *mlmodel.Scope, c Config, tokens *Node) *Node {
	t := table(root, scopeTextEmbed, c.Vocab, c.Width, tokens.Graph())
	return Gather(t, InsertAxes(tokens, -1))
}

// Patchify cuts images [B, H, W, C] into non-overlapping P×P patches in
// row-major order, each flattened as (row in patch, column in patch,
// channel): the result is [B, (H/P)·(W/P), P·P·C], ViT style.
func Patchify(images *Node, patch int) *Node {
	d := images.Shape().Dimensions
	b, h, w, ch := d[0], d[1], d[2], d[3]
	x := Reshape(images, b, h/patch, patch, w/patch, patch, ch)
	x = TransposeAllDims(x, 0, 1, 3, 2, 4, 5)
	return Reshape(x, b, (h/patch)*(w/patch), patch*patch*ch)
}

// PatchEmbed projects the patches of images [B, H, W, C] to the model width
// through the Linear site embed/image/patch, giving [B, patches, d].
func PatchEmbed(root *mlmodel.Scope, c Config, hook site.Hook, images *Node) *Node {
	return Linear(root, hook, c.siteOf(SitePatch), Patchify(images, c.PatchSize))
}

// positionRows returns the position embeddings of n positions starting at
// table row first, as [n, d]. Rows [0, Patches) belong to image patches and
// rows [Patches, Patches+MaxLen) to text, so a text token has the same
// position with or without an image.
func positionRows(root *mlmodel.Scope, c Config, g *Graph, first, n int) *Node {
	if c.positions() == Sinusoidal {
		return Const(g, SinusoidalTable(first, n, c.Width))
	}
	return rows(table(root, scopePos, c.NumPositions(), c.Width, g), first, n)
}

// SinusoidalTable returns rows [first, first+n) of the fixed position table
// of Vaswani et al.: entry (p, i) is sin(p·ω) for even i and cos(p·ω) for odd
// i, with ω = 10000^(-2⌊i/2⌋/d).
func SinusoidalTable(first, n, d int) [][]float32 {
	out := make([][]float32, n)
	for r := range out {
		p := float64(first + r)
		row := make([]float32, d)
		for i := range row {
			omega := math.Pow(10000, -float64(2*(i/2))/float64(d))
			if i%2 == 0 {
				row[i] = float32(math.Sin(p * omega))
			} else {
				row[i] = float32(math.Cos(p * omega))
			}
		}
		out[r] = row
	}
	return out
}

// addPositionAndType adds position rows [first, first+S) and the type row
// kind to x [B, S, d].
func addPositionAndType(root *mlmodel.Scope, c Config, x *Node, first, kind int) *Node {
	g := x.Graph()
	s := x.Shape().Dimensions[1]
	pos := positionRows(root, c, g, first, s)
	typ := rows(table(root, scopeType, 2, c.Width, g), kind, 1)
	pt := Reshape(Add(pos, typ), s*c.Width) // the same for every example: repeated as a product (backend.RepeatRows)
	return Add(x, Reshape(backend.RepeatRows(pt, x.Shape().Dimensions[0]), x.Shape().Dimensions...))
}

// embedText embeds tokens, runs the input/text hook, then adds positions and
// the text type embedding (so inserted prompt tokens get positions too).
func embedText(root *mlmodel.Scope, c Config, hook site.Hook, tokens *Node) (x, mask *Node) {
	x = TokenEmbed(root, c, tokens)
	mask = NotEqual(tokens, ScalarZero(tokens.Graph(), tokens.DType()))
	x, mask = site.CallInput(hook, root, c.siteOf(SiteTextInput), x, mask)
	checkHookOutput(SiteTextInput, x, mask, tokens.Shape().Dimensions[0], c.Width)
	if n := x.Shape().Dimensions[1]; n > c.MaxLen {
		panic(fmt.Errorf("text sequence of %d positions (%d tokens given, %d inserted by input hooks) exceeds MaxLen %d",
			n, tokens.Shape().Dimensions[1], n-tokens.Shape().Dimensions[1], c.MaxLen))
	}
	return addPositionAndType(root, c, x, c.Patches(), typeText), mask
}

// embedImages patch-embeds images, runs the input/image hook, then adds
// positions and the image type embedding.
func embedImages(root *mlmodel.Scope, c Config, hook site.Hook, images *Node) (x, mask *Node) {
	x = PatchEmbed(root, c, hook, images)
	b, n := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	mask = Ones(images.Graph(), shapes.Make(dtypes.Bool, b, n))
	x, mask = site.CallInput(hook, root, c.siteOf(SiteImageInput), x, mask)
	checkHookOutput(SiteImageInput, x, mask, b, c.Width)
	if got := x.Shape().Dimensions[1]; got != n {
		panic(fmt.Errorf("the %s hook changed the number of image tokens from %d to %d; only the text input may grow (prompt tokens go before the text)",
			SiteImageInput, n, got))
	}
	return addPositionAndType(root, c, x, 0, typeImage), mask
}

// checkHookOutput panics with a clear message when an input hook returns
// shapes the model cannot use.
func checkHookOutput(name string, x, mask *Node, batch, width int) {
	xd, md := x.Shape().Dimensions, mask.Shape().Dimensions
	if x.Rank() != 3 || xd[0] != batch || xd[2] != width || mask.Rank() != 2 || md[0] != batch || md[1] != xd[1] ||
		mask.DType() != dtypes.Bool {
		panic(fmt.Errorf("the %s hook returned x %s and mask %s; want x [%d, seq, %d] Float32 and mask [%d, seq] Bool",
			name, x.Shape(), mask.Shape(), batch, width, batch))
	}
}
