package serve

import (
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style: graph ops read as math.
	"github.com/gomlx/gomlx/ml/layers/activation"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// mixHook is the site.Hook of one mixed batch: every example b carries its own adapter
// weights, gathered from the stacked tables (graph inputs) by the example's slot, so one
// compiled graph serves every mix of tasks. Slot 0 of every table is all zeros, which leaves
// an example's embeddings and projections exactly as the base computes them (x + 0 = x), so
// an example of another family, or of none, passes a family's hook unchanged.
type mixHook struct {
	// ada holds, per AdaLink input site, the gathered A [B, d, R] and B [B, R, d].
	ada map[string][2]*Node
	// adaAct is each example's activation id [B] Int32 (index into adaActs, 0 = identity),
	// nil when every loaded AdaLink adapter is linear.
	adaAct  *Node
	adaActs []string

	// lora holds, per Linear site, the gathered A [B, in, R] and B [B, R, out]; loraScale
	// is each example's α/r [B].
	lora      map[string][2]*Node
	loraScale *Node

	// prompt is the gathered soft prompt [B, P, d] and promptLen each example's number of
	// soft tokens [B] Int32 (its first promptLen rows are the prompt); textLen is the length
	// of the text sequence the hook returns (prompt plus text, right-padded).
	prompt, promptLen *Node
	textLen           int
}

// Input implements site.Hook: AdaLink's x + φ(x·A_b)·B_b at the input sites it adapts, then
// each example's soft prompt before its text.
func (h *mixHook) Input(_ *mlmodel.Scope, s site.Site, x, mask *Node) (*Node, *Node) {
	if w, ok := h.ada[s.Name]; ok {
		x = h.adalink(x, w[0], w[1])
	}
	if s.Name == model.SiteTextInput && h.prompt != nil {
		x, mask = h.insertPrompt(x, mask)
	}
	return x, mask
}

// Linear implements site.Hook: y + scale_b·(x·A_b)·B_b at the sites some loaded LoRA adapter
// adapts.
func (h *mixHook) Linear(_ *mlmodel.Scope, s site.Site, x, y *Node) *Node {
	w, ok := h.lora[s.Name]
	if !ok {
		return y
	}
	dims := x.Shape().Dimensions
	b := dims[0]
	flat := Reshape(x, b, -1, s.In) // [B, N, in]: the head sees [B, in], the blocks [B, S, in]
	t := DotGeneral(flat, []int{2}, []int{0}, w[0], []int{1}, []int{0})
	delta := DotGeneral(t, []int{2}, []int{0}, w[1], []int{1}, []int{0}) // [B, N, out]
	delta = Mul(delta, Reshape(h.loraScale, b, 1, 1))
	return Add(y, Reshape(delta, y.Shape().Dimensions...))
}

// adalink is x + φ_b(x·A_b)·B_b for x [B, N, d].
func (h *mixHook) adalink(x, a, b *Node) *Node {
	t := DotGeneral(x, []int{2}, []int{0}, a, []int{1}, []int{0}) // [B, N, R]
	if h.adaAct != nil {
		phi := t
		for id, name := range h.adaActs {
			if id == 0 {
				continue
			}
			is := Equal(h.adaAct, Scalar(x.Graph(), dtypes.Int32, id))
			phi = Where(is, activate(t, name), phi)
		}
		t = phi
	}
	return Add(x, DotGeneral(t, []int{2}, []int{0}, b, []int{1}, []int{0}))
}

// activate is adalink's φ (the same GoMLX functions as package adalink).
func activate(t *Node, name string) *Node {
	switch name {
	case "relu":
		return activation.Relu(t)
	case "gelu":
		return activation.Gelu(t)
	case "tanh":
		return Tanh(t)
	}
	return t
}

// insertPrompt lays each example's text sequence out as [its p_b soft tokens][its text]
// [padding], textLen positions long: a soft prompt shorter than the longest in the batch
// does not shift the example's text positions, so the example sees exactly the positions it
// would see alone. Trailing positions are padding (masked).
func (h *mixHook) insertPrompt(x, mask *Node) (*Node, *Node) {
	g := x.Graph()
	dims := x.Shape().Dimensions
	b, t, d := dims[0], dims[1], dims[2]
	p := h.prompt.Shape().Dimensions[1]
	s := h.textLen

	all := Concatenate([]*Node{h.prompt, x, Zeros(g, shapes.Make(x.DType(), b, 1, d))}, 1) // [B, P+T+1, d]
	allMask := Concatenate([]*Node{
		Ones(g, shapes.Make(dtypes.Int32, b, p)),
		ConvertDType(mask, dtypes.Int32),
		Zeros(g, shapes.Make(dtypes.Int32, b, 1)),
	}, 1)

	j := Iota(g, shapes.Make(dtypes.Int32, b, s), 1)
	lb := BroadcastToDims(InsertAxes(h.promptLen, -1), b, s)
	text := Sub(j, lb) // position in the example's text
	inText := LessThan(text, Scalar(g, dtypes.Int32, t))
	src := Where(LessThan(j, lb), j,
		Where(inText, AddScalar(text, p), Scalar(g, dtypes.Int32, p+t)))
	idx := Stack([]*Node{Iota(g, shapes.Make(dtypes.Int32, b, s), 0), src}, -1) // [B, S, 2]
	return Gather(all, idx), NotEqual(Gather(allMask, idx), ScalarZero(g, dtypes.Int32))
}

// gatherSlots returns table [cap, ...] gathered at slots [B] Int32: [B, ...].
func gatherSlots(table, slots *Node) *Node {
	return Gather(table, InsertAxes(slots, -1))
}
