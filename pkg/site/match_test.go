package site

import (
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"block/*/attn/{q,v}", "block/3/attn/q", true},
		{"block/*/attn/{q,v}", "block/3/attn/v", true},
		{"block/*/attn/{q,v}", "block/3/attn/k", false},
		{"block/*/attn/{q,v}", "block/3/attn/q/extra", false},
		{"input/*", "input/text", true},
		{"input/*", "/input/image", true},
		{"input/*", "block/0/attn/q", false},
		{"block/1/**", "block/1/attn/q/weights", true},
		{"block/1/**", "block/10/attn/q", false},
		{"**/gain", "block/0/ln1/gain", true},
		{"**/gain", "final_ln/gain", true},
		{"head/*", "head/cls", true},
		{"block/{0,1}/mlp/{up,down}", "block/1/mlp/down", true},
		{"block/{0,1}/mlp/{up,down}", "block/2/mlp/down", false},
	}
	for _, c := range cases {
		if got := Pattern(c.pattern).Match(c.name); got != c.want {
			t.Errorf("Pattern(%q).Match(%q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestPatternValidate(t *testing.T) {
	for _, bad := range []string{"block/{q,v", "block/q}", "block/[a"} {
		if err := Pattern(bad).Validate(); err == nil {
			t.Errorf("Pattern(%q).Validate() = nil, want an error", bad)
		}
	}
	if err := Pattern("block/*/attn/{q,v}").Validate(); err != nil {
		t.Errorf("valid pattern rejected: %v", err)
	}
}

func testLayout() Layout {
	return Layout{
		Model: "tiny", Width: 8, Blocks: 2,
		Sites: []Site{
			{Name: "input/text", Kind: Input, In: 8, Out: 8, Modality: "text"},
			{Name: "block/0/attn/q", Kind: Linear, In: 8, Out: 8},
			{Name: "block/0/attn/v", Kind: Linear, In: 8, Out: 8},
			{Name: "block/1/attn/q", Kind: Linear, In: 8, Out: 8},
			{Name: "block/1/attn/v", Kind: Linear, In: 8, Out: 8},
		},
		Params: []Param{
			{Name: "/block/0/attn/q/weights", Shape: []int{8, 8}},
			{Name: "/block/0/ln1/gain", Shape: []int{8}},
		},
	}
}

func TestSelect(t *testing.T) {
	l := testLayout()
	got, err := l.Select("block/*/attn/q", "block/0/attn/v")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	// Layout order, not pattern order.
	if want := "block/0/attn/q,block/0/attn/v,block/1/attn/q"; strings.Join(names, ",") != want {
		t.Errorf("Select = %v, want %s", names, want)
	}
	_, err = l.Select("block/*/attn/k")
	if err == nil || !strings.Contains(err.Error(), "matches no site") || !strings.Contains(err.Error(), "block/0/attn/q") {
		t.Errorf("Select of a missing site: err = %v, want it to say it matches nothing and list the sites", err)
	}
	if _, err := l.Select(); err == nil {
		t.Error("Select() with no pattern succeeded")
	}
	if _, err := l.SelectParams("**/nothing"); err == nil {
		t.Error("SelectParams of a missing weight succeeded")
	}
	ps, err := l.SelectParams("**/gain")
	if err != nil || len(ps) != 1 || ps[0].Size() != 8 {
		t.Errorf("SelectParams(**/gain) = %v, %v", ps, err)
	}
	if ms := l.Modalities(); len(ms) != 1 || ms[0] != "text" {
		t.Errorf("Modalities = %v", ms)
	}
	if l.NumParams() != 72 {
		t.Errorf("NumParams = %d, want 72", l.NumParams())
	}
}

// Hostile patterns (an adapter file is user input) must stay fast: plain
// backtracking over "**" and unbounded brace expansion are exponential.
func TestPatternAdversarial(t *testing.T) {
	name := strings.Repeat("a/", 30) + "b"
	p := Pattern(strings.Repeat("**/x/", 12) + "c")
	if p.Match(name) {
		t.Errorf("%q matched %q", p, name)
	}
	if !Pattern(strings.Repeat("**/", 14) + "b").Match(name) {
		t.Error("repeated ** failed to match")
	}
	many := Pattern(strings.Repeat("{a,b}/", 40))
	if err := many.Validate(); err == nil || !strings.Contains(err.Error(), "alternatives") {
		t.Errorf("Validate of a 2^40-way pattern: %v", err)
	}
	if many.Match("a/a") {
		t.Error("over-large pattern matched")
	}
}
