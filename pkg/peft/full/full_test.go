package full

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/internal/peftest"
	"github.com/peftlab/peftlab/pkg/site"
)

func names(ps []site.Param) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Name
	}
	return out
}

func count(ps []site.Param) int {
	n := 0
	for _, p := range ps {
		n += p.Size()
	}
	return n
}

// Each preset trains the closed-form number of weights of the tiny model.
func TestPresetCounts(t *testing.T) {
	c := peftest.MM // d=8, 2 blocks, MLP 16, 3 classes, vocab 13
	d, f, blocks := c.Width, c.MLPDim, c.Blocks
	block := 4*(d*d+d) + (d*f + f) + (f*d + d) + 2*2*d // attn q,k,v,o + mlp + two LayerNorms
	cases := []struct {
		cfg   Config
		want  int
		first string
	}{
		{Config{}, c.Layout().NumParams(), "/embed/text/embeddings"},
		{Config{Preset: "all"}, c.Layout().NumParams(), "/embed/text/embeddings"},
		{Config{Preset: "head"}, (d*c.Classes + c.Classes) + (d*c.Vocab + c.Vocab), "/head/cls/weights"},
		{Config{Preset: "layernorm"}, 2 * d * (2*blocks + 1), "/block/0/ln1/gain"},
		{Config{Preset: "last:1"}, block, "/block/1/ln1/gain"},
		{Config{Preset: "last:2"}, 2 * block, "/block/0/ln1/gain"},
		{Config{Targets: []string{"block/*/attn/{q,v}"}}, 2 * blocks * (d*d + d), "/block/0/attn/q/weights"},
		{Config{Targets: []string{"**/biases"}}, blocks*(4*d+f+d) + d + c.Classes + c.Vocab, "/embed/image/patch/biases"},
		{Config{Preset: "head", Targets: []string{"final_ln/*", "head/cls"}}, (d*c.Classes + c.Classes) + (d*c.Vocab + c.Vocab) + 2*d, "/final_ln/gain"},
	}
	for _, tc := range cases {
		res, err := tc.cfg.Resolve(c.Layout())
		if err != nil {
			t.Errorf("%v: %v", tc.cfg, err)
			continue
		}
		if len(res.Sites) != 0 || len(res.New) != 0 {
			t.Errorf("%v: resolved sites %v and new weights %v; full fine-tuning adds nothing", tc.cfg, res.Sites, res.New)
		}
		if got := count(res.Base); got != tc.want {
			t.Errorf("%v: %d weights train, want %d (%v)", tc.cfg, got, tc.want, names(res.Base))
		}
		if len(res.Base) == 0 || res.Base[0].Name != tc.first {
			t.Errorf("%v: first weight %v, want %s", tc.cfg, names(res.Base), tc.first)
		}
		m, err := peft.New(c.Layout(), peft.Adapter{Name: "ft", Method: tc.cfg})
		if err != nil {
			t.Fatal(err)
		}
		if p := m.Plan(); p.Trainable != tc.want || p.Total != c.Layout().NumParams() {
			t.Errorf("%v: plan trainable %d total %d", tc.cfg, p.Trainable, p.Total)
		}
	}
}

func TestPresetSelectsOnlyItsWeights(t *testing.T) {
	l := peftest.MM.Layout()
	check := func(preset Preset, ok func(string) bool) {
		res, err := Config{Preset: preset}.Resolve(l)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names(res.Base) {
			if !ok(n) {
				t.Errorf("preset %s selected %s", preset, n)
			}
		}
	}
	check("head", func(n string) bool { return strings.HasPrefix(n, "/head/") })
	check("layernorm", func(n string) bool { return strings.HasSuffix(n, "/gain") || strings.HasSuffix(n, "/offset") })
	check("last:1", func(n string) bool { return strings.HasPrefix(n, "/block/1/") })
}

func TestResolveErrors(t *testing.T) {
	l := peftest.MM.Layout()
	noHead := model.Config{Vocab: 0, Width: 8, Heads: 2, Blocks: 1, MLPDim: 8, ImageSize: 4, PatchSize: 2, Channels: 3}
	cases := []struct {
		cfg    Config
		layout site.Layout
		want   []string
	}{
		{Config{Preset: "everything"}, l, []string{`unknown preset "everything"`, "all, head, layernorm, last:K"}},
		{Config{Preset: "last:3"}, l, []string{`"last:3"`, "only 2 blocks"}},
		{Config{Preset: "last:0"}, l, []string{`"last:0"`, "positive"}},
		{Config{Preset: "last:x"}, l, []string{`"last:x"`}},
		{Config{Preset: "last:"}, l, []string{`"last:"`}},
		{Config{Targets: []string{"block/*/attn/z"}}, l, []string{`"block/*/attn/z" matches no weight`}},
		{Config{Targets: []string{"block/{q"}}, l, []string{"without '}'"}},
		{Config{Preset: "head"}, noHead.Layout(), []string{`"head/**" matches no weight`}},
		{Config{}, site.Layout{Model: "empty"}, []string{"declares no weights"}},
	}
	for _, tc := range cases {
		_, err := tc.cfg.Resolve(tc.layout)
		if err == nil {
			t.Errorf("%+v: no error", tc.cfg)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q does not mention %q", tc.cfg, err, w)
			}
		}
	}
}

// Two adapters may not train the same weight; disjoint subsets compose.
func TestComposition(t *testing.T) {
	l := peftest.MM.Layout()
	_, err := peft.New(l,
		peft.Adapter{Name: "all", Method: Config{}},
		peft.Adapter{Name: "head", Method: Config{Preset: "head"}})
	if err == nil || !strings.Contains(err.Error(), "/head/cls/weights is already trained by adapter \"all\"") {
		t.Errorf("overlapping full adapters: err = %v", err)
	}
	m, err := peft.New(l,
		peft.Adapter{Name: "ln", Method: Config{Preset: "layernorm"}},
		peft.Adapter{Name: "head", Method: Config{Preset: "head"}})
	if err != nil {
		t.Fatal(err)
	}
	if p, d := m.Plan(), peftest.MM.Width; p.Trainable != 2*d*(2*peftest.MM.Blocks+1)+(d*3+3)+(d*13+13) {
		t.Errorf("layernorm + head train %d", p.Trainable)
	}
}

// The hooks change nothing, and after a build exactly the selected base
// weights are trainable.
func TestForwardAndTrainable(t *testing.T) {
	scope := peftest.NewCtx(t)
	baseCls, baseLM := peftest.Forward(t, scope, peftest.MM, nil)
	cfg := Config{Preset: "last:1", Targets: []string{"head/cls"}}
	m, err := peft.New(peftest.MM.Layout(), peft.Adapter{Name: "ft", Method: cfg})
	if err != nil {
		t.Fatal(err)
	}
	cls, lm := peftest.Forward(t, scope, peftest.MM, m)
	if d := max(peftest.MaxDiff(cls, baseCls), peftest.MaxDiff(lm, baseLM)); d != 0 {
		t.Errorf("full fine-tuning changed the forward pass by %g", d)
	}
	res, _ := m.Resolution("ft")
	want := map[string]bool{}
	for _, p := range res.Base {
		want[p.Name] = true
	}
	seen := 0
	for v := range scope.IterVariables() {
		if v.Trainable != want[v.Path()] {
			t.Errorf("%s: trainable = %v", v.Path(), v.Trainable)
		}
		if want[v.Path()] {
			seen++
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d selected weights exist as variables", seen, len(want))
	}
}

func TestRegistryAndJSON(t *testing.T) {
	m, err := peft.NewConfig(PeftType)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(`{"preset":"last:2","targets":["head/**"]}`), m); err != nil {
		t.Fatal(err)
	}
	if got, want := *m.(*Config), (Config{Preset: "last:2", Targets: []string{"head/**"}}); !reflect.DeepEqual(got, want) {
		t.Errorf("decoded %+v, want %+v", got, want)
	}
	if m.Type() != "FULL" {
		t.Errorf("Type = %q", m.Type())
	}
	if s := (Config{}).String(); s != "Full(all)" {
		t.Errorf("String of the zero config = %q", s)
	}
	// JSON shows what trains: the zero config is the "all" preset; targets alone have no preset.
	for c, want := range map[*Config]string{{}: `{"preset":"all"}`, {Targets: []string{"head/**"}}: `{"targets":["head/**"]}`} {
		if out, err := json.Marshal(*c); err != nil || string(out) != want {
			t.Errorf("JSON of %+v: %s (%v), want %s", *c, out, err, want)
		}
	}
}
