package pretrain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Names of the shipped bases (and of cmd/pretrain's -base values).
const (
	Text        = bases.Text
	VLMRaw      = bases.VLMRaw
	VLMInstruct = bases.VLMInstruct
)

// Recipe is everything that makes one base: its architecture, its data and its training
// settings. The recipes are fixed in code so the shipped checkpoints can be remade exactly.
type Recipe struct {
	Name  string
	About string
	Model model.Config
	Train trainer.Config
	// SeqLen is the token length of the training sequences.
	SeqLen int
	// Text sizes the text corpus (text base).
	Text TextOptions
	// Tasks are the pretraining tasks and HeldOutTasks the tasks kept out of pretraining
	// (multimodal bases).
	Tasks, HeldOutTasks []string
	Mixture             MixtureOptions
}

// Multimodal reports whether the recipe makes a vision-language base.
func (r Recipe) Multimodal() bool { return r.Model.HasImage() }

// The two regimes of the AdaLink paper: a raw base pretrained on captioning alone, and an
// instruction-tuned one pretrained on many instructed tasks. Both see the same images; the
// held-out tasks ask new questions about them (parity of a digit whose name the instructed
// base knows, footwear among clothes it can name, an emoji's category from its picture).
var (
	// RawTasks are the captioning tasks of the raw base: "describe the image." answered with
	// the image's name.
	RawTasks = []string{"mnist-caption", "fashion-caption", "emoji-caption"}
	// InstructTasks are the instructed base's tasks: the captioning tasks plus VQA tasks.
	InstructTasks = []string{"mnist-digit", "mnist-large", "fashion-item", "mnist-caption", "fashion-caption", "emoji-caption"}
	// HeldOutTasks are never trained on by either vision-language base.
	HeldOutTasks = []string{"mnist-parity", "fashion-footwear", "emoji-category"}
)

// textModel and vlmModel are the architectures. Both are 3 pre-LN blocks of width 64 with
// 4 heads and a 256-wide MLP over the shared 2,048-token vocabulary; the text base reads
// 128 tokens, the vision-language bases 16 patches of 8x8 pixels of a 32x32 RGB image
// followed by up to 48 tokens. Sized so each trains in about a quarter of an hour on two CPU
// cores with the pure-Go backend.
var (
	textModel = model.Config{Name: "peftlab-text", Vocab: VocabSize, Width: 64, Heads: 4, Blocks: 3, MLPDim: 256,
		MaxLen: 128, EndToken: int(tokenizer.EosID)}
	vlmModel = model.Config{Vocab: VocabSize, Width: 64, Heads: 4, Blocks: 3, MLPDim: 256, MaxLen: 48,
		ImageSize: 32, PatchSize: 8, Channels: 3, EndToken: int(tokenizer.EosID)}
)

// Recipes returns the recipes of the shipped bases, in the order of Names.
func Recipes() []Recipe {
	vlmTrain := trainer.Config{Steps: 1500, BatchSize: 32, LR: 2e-3, WeightDecay: 0.01, Warmup: 50,
		Schedule: trainer.Cosine, EvalEvery: 100, Seed: 1}
	mixture := MixtureOptions{PerTask: 8000, ValidationPerTask: 32, SeqLen: 32}
	raw, instruct := vlmModel, vlmModel
	raw.Name, instruct.Name = "peftlab-vlm-raw", "peftlab-vlm-instruct"
	return []Recipe{
		{
			Name:  Text,
			About: "causal language model on IMDB reviews, SpamAssassin mails and fortune quotes (task test splits held out)",
			Model: textModel,
			Train: trainer.Config{Steps: 900, BatchSize: 16, LR: 2e-3, WeightDecay: 0.01, Warmup: 50,
				Schedule: trainer.Cosine, EvalEvery: 100, Seed: 1},
			SeqLen: 128,
			Text:   TextOptions{PerTask: 8000, HeldOutPerTask: 200, ValidationPerTask: 64, Seed: 1},
		},
		{
			Name:    VLMRaw,
			About:   "raw vision-language base: captioning alone (\"describe the image.\" -> the image's name) on MNIST, Fashion-MNIST and Noto emoji",
			Model:   raw,
			Train:   vlmTrain,
			SeqLen:  mixture.SeqLen,
			Tasks:   RawTasks,
			Mixture: mixture,
			// The raw base is asked nothing but "describe the image.": every VQA task is new to it.
			HeldOutTasks: HeldOutTasks,
		},
		{
			Name:         VLMInstruct,
			About:        "instruction-tuned vision-language base: VQA and captioning with natural-language instructions, some tasks held out",
			Model:        instruct,
			Train:        vlmTrain,
			SeqLen:       mixture.SeqLen,
			Tasks:        InstructTasks,
			HeldOutTasks: HeldOutTasks,
			Mixture:      mixture,
		},
	}
}

// Names lists the shipped bases.
func Names() []string { return bases.Names() }

// RecipeFor returns the recipe of a base by name.
func RecipeFor(name string) (Recipe, error) {
	for _, r := range Recipes() {
		if r.Name == name {
			return r, nil
		}
	}
	return Recipe{}, fmt.Errorf("unknown base %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Validate checks a recipe before any data is loaded.
func (r Recipe) Validate() error {
	if err := r.Model.Validate(); err != nil {
		return fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	if err := r.Train.Validate(); err != nil {
		return fmt.Errorf("recipe %s: %w", r.Name, err)
	}
	if r.SeqLen < 8 || r.SeqLen > r.Model.MaxLen {
		return fmt.Errorf("recipe %s: SeqLen %d must be in [8, MaxLen %d]", r.Name, r.SeqLen, r.Model.MaxLen)
	}
	for _, t := range r.Tasks {
		if slices.Contains(r.HeldOutTasks, t) {
			return fmt.Errorf("recipe %s: task %s is both a pretraining task and held out", r.Name, t)
		}
	}
	if r.Multimodal() && len(r.Tasks) == 0 {
		return fmt.Errorf("recipe %s: a vision-language base needs pretraining tasks", r.Name)
	}
	return nil
}
