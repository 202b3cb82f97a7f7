package lora

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

func TestDefaultsAndScale(t *testing.T) {
	d := Config{}.WithDefaults()
	if d.Rank != 8 || d.Alpha != 8 || d.Dropout != 0 || d.RSLoRA || !slices.Equal(d.Targets, []string{"block/*/attn/{q,v}"}) {
		t.Errorf("defaults = %+v, want PEFT's r=8, alpha=8, no dropout, q and v", d)
	}
	if got, want := (Config{Rank: 4, RSLoRA: true, Dropout: 0.1}).String(), "LoRA(r=4, α=8, block/*/attn/{q,v}, rsLoRA, dropout=0.1)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	cases := []struct {
		c    Config
		want float64
	}{
		{Config{}, 1},                                  // r = 8, α = 8: PEFT's defaults
		{Config{Rank: 4}, 2},                           // α = 8 whatever the rank, as in PEFT
		{Config{Rank: 4, Alpha: 4}, 1},                 // α = r: scale 1
		{Config{Rank: 16, Alpha: 32}, 2},               // α/r
		{Config{Rank: 16, Alpha: 32, RSLoRA: true}, 8}, // α/√r
		{Config{Rank: 2, Alpha: 3, RSLoRA: true}, 3 / math.Sqrt2},
		{Config{Rank: 4, RSLoRA: true}, 4}, // α = 8: 8/√4
	}
	for _, c := range cases {
		if got := c.c.Scale(); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%+v.Scale() = %g, want %g", c.c, got, c.want)
		}
	}
}

func TestJSON(t *testing.T) {
	b, err := json.Marshal(Config{Rank: 4, RSLoRA: true})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"r":4,"lora_alpha":8,"lora_dropout":0,"target_modules":["block/*/attn/{q,v}"],"use_rslora":true}`
	if string(b) != want {
		t.Errorf("Marshal = %s\nwant      %s", b, want)
	}

	// A PEFT-style file: one string for target_modules.
	hf := `{"r": 16, "lora_alpha": 32, "lora_dropout": 0.1, "target_modules": "block/*/mlp/up", "use_rslora": true}`
	m, err := peft.NewConfig("LORA")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(hf), m); err != nil {
		t.Fatal(err)
	}
	// Unknown keys are refused, naming the key and the known ones: a
	// misspelt field would otherwise load as its default, silently.
	for _, bad := range []string{`{"r": 4, "lora_alhpa": 32}`, `{"use_rs_lora": true}`, `{"r": 4, "bias": "none"}`} {
		var c Config
		err := json.Unmarshal([]byte(bad), &c)
		if err == nil || !strings.Contains(err.Error(), "unknown field") || !strings.Contains(err.Error(), "lora_alpha, lora_dropout") {
			t.Errorf("Unmarshal(%s) = %v, want an unknown-field error listing the known fields", bad, err)
		}
	}
	c, ok := m.(*Config)
	if !ok {
		t.Fatalf("peft.NewConfig(LORA) = %T, want *lora.Config", m)
	}
	if c.Rank != 16 || c.Alpha != 32 || c.Dropout != 0.1 || !c.RSLoRA || !slices.Equal(c.Targets, []string{"block/*/mlp/up"}) {
		t.Errorf("decoded %+v", *c)
	}
	var list Config
	if err := json.Unmarshal([]byte(`{"target_modules": ["block/0/attn/q", "head/*"]}`), &list); err != nil ||
		!slices.Equal(list.Targets, []string{"block/0/attn/q", "head/*"}) {
		t.Errorf("list target_modules: %+v, %v", list, err)
	}
	// Round trip.
	var back Config
	if err := json.Unmarshal(b, &back); err != nil || back.Rank != 4 || back.Alpha != 8 || !back.RSLoRA {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"target_modules": 5}`), &back); err == nil || !strings.Contains(err.Error(), "target_modules") {
		t.Errorf("numeric target_modules: err = %v, want one naming target_modules", err)
	}
}

func TestResolveErrors(t *testing.T) {
	l := tiny.Layout()
	cases := []struct {
		name string
		c    Config
		want []string // all must appear in the error
	}{
		{"input site", Config{Targets: []string{"input/text"}},
			[]string{"LoRA adapts linear sites; input/text is an input site, use AdaLink or prompt tuning"}},
		{"input glob", Config{Targets: []string{"input/*"}}, []string{"input/text is an input site"}},
		{"no match", Config{Targets: []string{"block/*/attn/qkv"}},
			[]string{`"block/*/attn/qkv" matches no site`, "block/0/attn/q", "head/lm"}},
		{"bad pattern", Config{Targets: []string{"block/{q,v"}}, []string{"'{' without '}'"}},
		{"negative rank", Config{Rank: -1}, []string{"rank r = -1"}},
		{"rank above width", Config{Rank: 9}, []string{"rank r = 9", "block/0/attn/q", "min(in, out) = 8"}},
		{"rank above classes", Config{Rank: 4, Targets: []string{"head/cls"}}, []string{"head/cls", "min(in, out) = 3"}},
		{"negative alpha", Config{Alpha: -1}, []string{"lora_alpha = -1"}},
		{"NaN alpha", Config{Alpha: math.NaN()}, []string{"lora_alpha = NaN"}},
		{"negative dropout", Config{Dropout: -0.1}, []string{"lora_dropout = -0.1", "[0, 1)"}},
		{"dropout one", Config{Dropout: 1}, []string{"lora_dropout = 1"}},
	}
	for _, c := range cases {
		_, err := c.c.Resolve(l)
		if err == nil {
			t.Errorf("%s: Resolve(%+v) succeeded", c.name, c.c)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not contain %q", c.name, err, w)
			}
		}
	}
	// peft.New names the adapter.
	_, err := peft.New(l, peft.Adapter{Name: "qv", Method: Config{Rank: -2}})
	if err == nil || !strings.Contains(err.Error(), `adapter "qv" (LORA)`) {
		t.Errorf("peft.New with a bad rank: err = %v", err)
	}
	// The edges that are valid.
	for _, c := range []Config{{Rank: 8}, {Rank: 3, Targets: []string{"head/cls"}}, {Dropout: 0.999}, {Alpha: 1e-3}} {
		if _, err := c.Resolve(l); err != nil {
			t.Errorf("Resolve(%+v): %v", c, err)
		}
	}
}

func TestAllLinear(t *testing.T) {
	mm := model.Config{Name: "mm", Vocab: 13, Width: 8, Heads: 2, Blocks: 1, MLPDim: 16, MaxLen: 8,
		ImageSize: 4, PatchSize: 2, Channels: 3, Classes: 3}
	res, err := Config{Rank: 2, Targets: []string{AllLinear}}.Resolve(mm.Layout())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.Sites {
		names = append(names, s.Name)
	}
	want := "embed/image/patch block/0/attn/q block/0/attn/k block/0/attn/v block/0/attn/o block/0/mlp/up block/0/mlp/down"
	if strings.Join(names, " ") != want {
		t.Errorf("all-linear sites = %v\nwant %s", names, want)
	}
	// Combined with an explicit head pattern, still in layout order.
	res, err = Config{Rank: 2, Targets: []string{"head/cls", AllLinear}}.Resolve(mm.Layout())
	if err != nil || res.Sites[len(res.Sites)-1].Name != "head/cls" || len(res.Sites) != 8 {
		t.Errorf("all-linear + head/cls: %v, %v", res.Sites, err)
	}
}

// TestParamCounts checks Plan against the closed form r·(in+out) per adapted
// matrix, computed here from the model's sizes, for several shapes and ranks.
func TestParamCounts(t *testing.T) {
	shapes := []model.Config{
		{Name: "a", Vocab: 13, Width: 8, Heads: 2, Blocks: 2, MLPDim: 16, MaxLen: 12, Classes: 3},
		{Name: "b", Vocab: 50, Width: 24, Heads: 4, Blocks: 3, MLPDim: 40, MaxLen: 10},
		{Name: "c", Width: 16, Heads: 2, Blocks: 1, MLPDim: 64, ImageSize: 8, PatchSize: 4, Channels: 3, Classes: 5},
	}
	for _, mc := range shapes {
		d, f, nb := mc.Width, mc.MLPDim, mc.Blocks
		for _, r := range []int{1, 2, 4, 8} {
			targets := []struct {
				t    []string
				want int
			}{
				{nil, nb * 2 * r * (d + d)}, // default q, v
				{[]string{"block/*/mlp/up"}, nb * r * (d + f)},
				{[]string{"block/*/mlp/{up,down}"}, nb * 2 * r * (d + f)},
				{[]string{AllLinear}, nb*(4*r*(2*d)+2*r*(d+f)) + map[bool]int{true: r * (mc.PatchDim() + d)}[mc.HasImage()]},
			}
			for _, tc := range targets {
				m := mustModel(t, mc.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: r, Targets: tc.t}})
				p := m.Plan()
				if p.Trainable != tc.want {
					t.Errorf("%s r=%d %v: trainable = %d, want %d", mc.Name, r, tc.t, p.Trainable, tc.want)
				}
				if p.Total != mc.Layout().NumParams()+tc.want || p.Frozen != mc.Layout().NumParams() {
					t.Errorf("%s r=%d %v: total %d frozen %d, base %d", mc.Name, r, tc.t, p.Total, p.Frozen, mc.Layout().NumParams())
				}
				for _, row := range p.Rows {
					s, ok := mc.Layout().Site(row.Site)
					if !ok {
						t.Fatalf("plan row %s has no site", row.Param.Name)
					}
					want := []int{s.In, r}
					if strings.HasSuffix(row.Param.Name, "/lora_B") {
						want = []int{r, s.Out}
					}
					if !slices.Equal(row.Param.Shape, want) || !strings.HasPrefix(row.Param.Name, "/adapters/lora/"+s.Name+"/lora_") {
						t.Errorf("plan row %s %v, want shape %v", row.Param.Name, row.Param.Shape, want)
					}
				}
			}
		}
	}
	// Frozen adapters count as frozen.
	m := mustModel(t, tiny.Layout(), peft.Adapter{Name: "lora", Method: Config{Rank: 2}, Frozen: true})
	if p := m.Plan(); p.Trainable != 0 || p.Frozen != tiny.Layout().NumParams()+2*2*2*(8+8) {
		t.Errorf("frozen adapter plan: %s", p.Summary())
	}
}

// The site shapes the formula test relies on are the ones the model declares.
func TestLayoutShapes(t *testing.T) {
	l := tiny.Layout()
	for name, io := range map[string][2]int{"block/0/attn/q": {8, 8}, "block/1/mlp/up": {8, 16}, "block/1/mlp/down": {16, 8}, "head/cls": {8, 3}, "head/lm": {8, 13}} {
		s, ok := l.Site(name)
		if !ok || s.Kind != site.Linear || s.In != io[0] || s.Out != io[1] {
			t.Errorf("site %s = %+v", name, s)
		}
	}
}
