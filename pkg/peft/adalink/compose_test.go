package adalink

import (
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
)

// AdaLink on text + LoRA on q,v: the counts add up, each method owns its
// weights, and at init the pair still computes exactly the base.
func TestComposeWithLoRA(t *testing.T) {
	c := peftest.MM
	d, ra, rl := c.Width, 4, 2
	m, err := peft.New(c.Layout(),
		peft.Adapter{Name: "ada", Method: Config{Rank: ra, Modalities: []string{"text"}}},
		peft.Adapter{Name: "lora", Method: lora.Config{Rank: rl, Targets: []string{"block/*/attn/{q,v}"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := 2*d*ra + c.Blocks*2*rl*(d+d)
	if p := m.Plan(); p.Trainable != want || p.Frozen != c.Layout().NumParams() {
		t.Errorf("AdaLink+LoRA train %d (frozen %d), want %d (%d)", p.Trainable, p.Frozen, want, c.Layout().NumParams())
	}
	scope := peftest.NewCtx(t)
	baseCls, baseLM := peftest.Forward(t, scope, c, nil)
	cls, lm := peftest.Forward(t, scope, c, m)
	if dd := max(peftest.MaxDiff(cls, baseCls), peftest.MaxDiff(lm, baseLM)); dd != 0 {
		t.Errorf("AdaLink+LoRA at init differ from the base by %g", dd)
	}
	trainable := map[string]bool{}
	for v := range scope.IterVariables() {
		if v.Trainable {
			trainable[v.Path()] = true
		}
	}
	for _, name := range []string{"/adapters/ada/input/text/A", "/adapters/ada/input/text/B",
		"/adapters/lora/block/0/attn/q/lora_A", "/adapters/lora/block/1/attn/v/lora_B"} {
		if !trainable[name] {
			t.Errorf("%s is not a trainable variable", name)
		}
	}
	for name := range trainable {
		if !strings.HasPrefix(name, "/adapters/") {
			t.Errorf("base weight %s is trainable", name)
		}
	}
}

// All four methods on one base: AdaLink on images, prompt tuning and LoRA on
// text, and the classification head fine-tuned.
func TestComposeAllMethods(t *testing.T) {
	c := peftest.MM
	d := c.Width
	m, err := peft.New(c.Layout(),
		peft.Adapter{Name: "ada", Method: Config{Rank: 3, Modalities: []string{"image"}}},
		peft.Adapter{Name: "pt", Method: prompt.Config{Tokens: 2}},
		peft.Adapter{Name: "lora", Method: lora.Config{Rank: 2}},
		peft.Adapter{Name: "ft", Method: full.Config{Targets: []string{"head/cls"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := 2*d*3 + 2*d + c.Blocks*2*2*(2*d) + (d*c.Classes + c.Classes)
	if p := m.Plan(); p.Trainable != want {
		t.Errorf("four methods train %d, want %d\n%s", p.Trainable, want, p)
	}
	scope := peftest.NewCtx(t)
	cls, lm := peftest.Forward(t, scope, c, m)
	if len(cls) != 2*c.Classes || len(lm) != 2*5*c.Vocab {
		t.Errorf("outputs have %d and %d values", len(cls), len(lm))
	}
}
