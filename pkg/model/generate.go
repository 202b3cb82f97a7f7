package model

import (
	"fmt"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/site"
)

// Generate continues each prompt greedily and returns only the new tokens,
// at most maxNew per prompt.
//
// tokens are the prompts, one per example, of any lengths >= 1 (start them
// with a BOS token if the task has one: the first new token is predicted
// from the last prompt token). images is nil or [len(tokens), ImageSize,
// ImageSize, Channels] Float32. An example stops early when it emits
// Config.EndToken (when set), which is not included in its output. The
// padding token 0 is never generated.
//
// There is no KV cache (the pure-Go backend lacks the dynamic-update ops):
// the prompts sit right-padded in a fixed buffer of longest-prompt+maxNew-1
// tokens and every step re-runs the same compiled graph on it, with each
// example's current position passed as an input. Causal attention makes the
// padding after that position irrelevant. That buffer, plus any tokens the
// text input hook inserts, must fit in MaxLen.
//
// Greedy decoding is deterministic: the same weights and prompts give the
// same output.
func Generate(b compute.Backend, scope *mlmodel.Scope, c Config, hook site.Hook, tokens [][]int32, images *tensors.Tensor,
	maxNew int) (out [][]int32, err error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.HasText() {
		return nil, fmt.Errorf("generate: model %s has no text output (Vocab = 0)", c.ModelName())
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("generate: no prompts given")
	}
	if maxNew < 0 {
		return nil, fmt.Errorf("generate: maxNew must be >= 0, got %d", maxNew)
	}
	longest := 0
	for i, p := range tokens {
		if len(p) == 0 {
			return nil, fmt.Errorf("generate: prompt %d is empty; give at least one token (e.g. a BOS token) to predict from", i)
		}
		for _, t := range p {
			if t <= 0 || int(t) >= c.Vocab {
				return nil, fmt.Errorf("generate: prompt %d holds token %d, outside the vocabulary [1, %d) (0 is padding)", i, t, c.Vocab)
			}
		}
		longest = max(longest, len(p))
	}
	if images != nil {
		want := shapes.Make(dtypes.Float32, len(tokens), c.ImageSize, c.ImageSize, c.Channels)
		if !c.HasImage() {
			return nil, fmt.Errorf("generate: model %s has no image input but images were given", c.ModelName())
		}
		if !images.Shape().Equal(want) {
			return nil, fmt.Errorf("generate: images are %s, want %s (one image per prompt)", images.Shape(), want)
		}
	}
	out = make([][]int32, len(tokens))
	if maxNew == 0 {
		return out, nil
	}
	length := longest + maxNew - 1
	if length > c.MaxLen {
		return nil, fmt.Errorf("generate: longest prompt %d + maxNew %d - 1 = %d positions exceed MaxLen %d",
			longest, maxNew, length, c.MaxLen)
	}

	buf := make([][]int32, len(tokens))
	pos := make([]int32, len(tokens)) // index of each example's last token
	for i, p := range tokens {
		buf[i] = make([]int32, length)
		copy(buf[i], p)
		pos[i] = int32(len(p) - 1)
	}
	done := make([]bool, len(tokens))

	step := func(scope *mlmodel.Scope, inputs []*Node) *Node {
		in := Inputs{Tokens: inputs[0]}
		if len(inputs) > 2 {
			in.Images = inputs[2]
		}
		return NextToken(scope, c, hook, in, inputs[1])
	}
	exec, err := mlmodel.NewExec(b, scope.Store(), step)
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	defer exec.Finalize()

	for s := 0; s < maxNew; s++ {
		args := []any{buf, pos}
		if images != nil {
			args = append(args, images)
		}
		next, err := execOne(exec, args)
		if err != nil {
			return nil, fmt.Errorf("generate step %d (token buffer of %d = longest prompt %d + maxNew %d - 1): %w",
				s, length, longest, maxNew, err)
		}
		ids := tensors.MustCopyFlatData[int32](next)
		allDone := true
		for i, t := range ids {
			if done[i] {
				continue
			}
			if c.EndToken > 0 && int(t) == c.EndToken {
				done[i] = true
				continue
			}
			out[i] = append(out[i], t)
			if s+1 < maxNew {
				pos[i]++
				buf[i][pos[i]] = t
				allDone = false
			}
		}
		if allDone {
			break
		}
	}
	return out, nil
}

// execOne runs exec and turns a graph-building panic into an error.
func execOne(exec *mlmodel.Exec, args []any) (t *tensors.Tensor, err error) {
	err = catch.Error(func() error {
		t, err = exec.Exec1(args...)
		return err
	})
	return t, err
}

// NextToken is one greedy decoding step as a graph: given the input batch
// and pos [B] Int32, the index of each example's last real token in
// in.Tokens, it returns the most likely next token [B] Int32, never 0
// (padding). Only the hidden state at pos goes through head/lm.
func NextToken(scope *mlmodel.Scope, c Config, hook site.Hook, in Inputs, pos *Node) *Node {
	if in.Tokens == nil {
		panic(fmt.Errorf("model %s: NextToken needs text tokens", c.ModelName()))
	}
	hidden, _ := Encode(scope, c, hook, in)
	g := hidden.Graph()
	b, s := hidden.Shape().Dimensions[0], hidden.Shape().Dimensions[1]
	offset := s - in.Tokens.Shape().Dimensions[1] // patches and inserted tokens come first
	batchIdx := Iota(g, shapes.Make(dtypes.Int32, b), 0)
	idx := Stack([]*Node{batchIdx, AddScalar(ConvertDType(pos, dtypes.Int32), offset)}, -1) // [B, 2]
	last := Gather(hidden, idx)                                                             // [B, d]
	logits := Linear(scope.Store().RootScope(), hook, c.siteOf(SiteLM), last)
	isPad := Equal(Iota(g, shapes.Make(dtypes.Int32, b, c.Vocab), 1), Scalar(g, dtypes.Int32, 0))
	logits = Where(isPad, Scalar(g, dtypes.Float32, -1e30), logits)
	return ConvertDType(ArgMax(logits, -1), dtypes.Int32)
}
