package model

import (
	"errors"
	"fmt"
)

// Positions names the two kinds of position embedding a Config can ask for.
const (
	// Learned positions are a trainable table /embed/pos/embeddings.
	Learned = "learned"
	// Sinusoidal positions are the fixed sine/cosine table of "Attention Is
	// All You Need"; they add no weights.
	Sinusoidal = "sinusoidal"
)

// Config describes one base transformer. It is plain data (JSON-serializable)
// so it can be stored next to a checkpoint and compared across runs.
//
// A modality exists when its sizes are set: Vocab > 0 gives a text input,
// ImageSize, PatchSize and Channels > 0 give an image input. At least one is
// needed; a model with both is multimodal.
type Config struct {
	// Name is a short human name used in messages and plans; empty gives a
	// name derived from the sizes.
	Name string `json:"name,omitempty"`

	// Vocab is the text vocabulary size (0 = no text modality). Token id 0 is
	// padding: it is masked out of attention and pooling and never generated.
	Vocab int `json:"vocab"`
	// Width is the model width d.
	Width int `json:"width"`
	// Heads is the number of attention heads; it must divide Width.
	Heads int `json:"heads"`
	// Blocks is the number of pre-LN transformer blocks.
	Blocks int `json:"blocks"`
	// MLPDim is the hidden size of each block's MLP.
	MLPDim int `json:"mlp_dim"`
	// MaxLen is the number of text positions, counting the tokens an input
	// hook inserts (prompt tuning's soft tokens). Ignored without text.
	MaxLen int `json:"max_len"`

	// ImageSize is the side of the square input images in pixels, PatchSize
	// the side of the square patches they are cut into (it must divide
	// ImageSize), Channels the number of colour channels. All zero = no image
	// modality.
	ImageSize int `json:"image_size,omitempty"`
	PatchSize int `json:"patch_size,omitempty"`
	Channels  int `json:"channels,omitempty"`

	// Classes is the size of the classification head head/cls (0 = none).
	Classes int `json:"classes,omitempty"`

	// Positions is Learned (the default when empty) or Sinusoidal.
	Positions string `json:"positions,omitempty"`

	// EndToken, when > 0, is the token id that ends a generated sequence:
	// Generate stops an example once it emits EndToken and does not include
	// it in the output. 0 means "no end token": Generate always produces
	// maxNew tokens.
	EndToken int `json:"end_token,omitempty"`
}

// HasText reports whether the model has a text input (and an LM head).
func (c Config) HasText() bool { return c.Vocab > 0 }

// HasImage reports whether the model has an image input.
func (c Config) HasImage() bool { return c.ImageSize > 0 || c.PatchSize > 0 || c.Channels > 0 }

// Patches is the number of image patches per image (0 without images).
func (c Config) Patches() int {
	if !c.HasImage() || c.PatchSize <= 0 {
		return 0
	}
	side := c.ImageSize / c.PatchSize
	return side * side
}

// PatchDim is the length of one flattened patch, PatchSize²·Channels: the
// input size of the embed/image/patch projection.
func (c Config) PatchDim() int { return c.PatchSize * c.PatchSize * c.Channels }

// HeadDim is the width of one attention head, Width/Heads.
func (c Config) HeadDim() int {
	if c.Heads <= 0 {
		return 0
	}
	return c.Width / c.Heads
}

// textLen is the number of text positions the model has room for.
func (c Config) textLen() int {
	if !c.HasText() {
		return 0
	}
	return c.MaxLen
}

// NumPositions is the number of rows of the position table: image patches
// first, then MaxLen text positions.
func (c Config) NumPositions() int { return c.Patches() + c.textLen() }

// positions returns c.Positions with the default applied.
func (c Config) positions() string {
	if c.Positions == "" {
		return Learned
	}
	return c.Positions
}

// ModelName is c.Name, or a name made from the sizes when it is empty.
func (c Config) ModelName() string {
	if c.Name != "" {
		return c.Name
	}
	var mods string
	switch {
	case c.HasText() && c.HasImage():
		mods = "text+image"
	case c.HasImage():
		mods = "image"
	default:
		mods = "text"
	}
	return fmt.Sprintf("transformer(%s, d=%d, heads=%d, blocks=%d)", mods, c.Width, c.Heads, c.Blocks)
}

// Validate reports every problem with the configuration at once, each in a
// sentence that says which field to change.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if c.Width <= 0 {
		bad("Width must be positive, got %d", c.Width)
	}
	if c.Heads <= 0 {
		bad("Heads must be positive, got %d", c.Heads)
	} else if c.Width > 0 && c.Width%c.Heads != 0 {
		bad("Width %d is not divisible by Heads %d: each head needs Width/Heads dimensions", c.Width, c.Heads)
	}
	if c.Blocks <= 0 {
		bad("Blocks must be at least 1, got %d", c.Blocks)
	}
	if c.MLPDim <= 0 {
		bad("MLPDim must be positive, got %d", c.MLPDim)
	}
	if c.Vocab < 0 {
		bad("Vocab must be >= 0 (0 = no text), got %d", c.Vocab)
	}
	if c.Vocab == 1 {
		bad("Vocab 1 holds only the padding token 0; use at least 2, or 0 for no text")
	}
	if c.HasText() && c.MaxLen <= 0 {
		bad("MaxLen must be positive for a model with text (Vocab %d), got %d", c.Vocab, c.MaxLen)
	}
	if c.HasImage() {
		if c.ImageSize <= 0 || c.PatchSize <= 0 || c.Channels <= 0 {
			bad("an image input needs ImageSize, PatchSize and Channels all positive, got %d, %d and %d (all 0 = no images)",
				c.ImageSize, c.PatchSize, c.Channels)
		} else if c.ImageSize%c.PatchSize != 0 {
			bad("ImageSize %d is not divisible by PatchSize %d: images are cut into whole square patches", c.ImageSize, c.PatchSize)
		}
	}
	if !c.HasText() && !c.HasImage() {
		bad("the model has no input: set Vocab (text) and/or ImageSize, PatchSize, Channels (images)")
	}
	if c.Classes < 0 {
		bad("Classes must be >= 0 (0 = no classification head), got %d", c.Classes)
	}
	if p := c.positions(); p != Learned && p != Sinusoidal {
		bad("Positions must be %q or %q, got %q", Learned, Sinusoidal, c.Positions)
	}
	if c.EndToken < 0 || (c.EndToken > 0 && c.EndToken >= c.Vocab) {
		bad("EndToken %d is not a token id of the vocabulary [1, %d) (0 = no end token)", c.EndToken, c.Vocab)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("model config %s: %w", c.ModelName(), errors.Join(errs...))
}
