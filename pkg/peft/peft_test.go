package peft

import (
	"strings"
	"testing"

	"github.com/gomlx/gomlx/core/graph"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/site"
)

// fakeMethod adapts the sites matched by its pattern, creates one [In, 2]
// weight per site, and may unfreeze base weights; its hooks record calls.
type fakeMethod struct {
	typ     string
	targets site.Pattern
	base    site.Pattern
	calls   *[]string
}

func (f fakeMethod) Type() string { return f.typ }

func (f fakeMethod) Resolve(l site.Layout) (Resolution, error) {
	var r Resolution
	if f.targets != "" {
		sites, err := l.Select(f.targets)
		if err != nil {
			return r, err
		}
		r.Sites = sites
		for _, s := range sites {
			r.New = append(r.New, site.Param{Name: s.Name + "/w", Shape: []int{s.In, 2}})
		}
	}
	if f.base != "" {
		ps, err := l.SelectParams(f.base)
		if err != nil {
			return r, err
		}
		r.Base = ps
	}
	return r, nil
}

func (f fakeMethod) Input(scope *mlmodel.Scope, s site.Site, x, mask *graph.Node) (*graph.Node, *graph.Node) {
	*f.calls = append(*f.calls, f.typ+"@"+s.Name+"@"+scope.Scope())
	return x, mask
}

func (f fakeMethod) Linear(scope *mlmodel.Scope, s site.Site, x, y *graph.Node) *graph.Node {
	*f.calls = append(*f.calls, f.typ+"@"+s.Name+"@"+scope.Scope())
	return y
}

func layout() site.Layout {
	return site.Layout{
		Model: "tiny", Width: 4, Blocks: 1,
		Sites: []site.Site{
			{Name: "input/text", Kind: site.Input, In: 4, Out: 4, Modality: "text"},
			{Name: "block/0/attn/q", Kind: site.Linear, In: 4, Out: 4},
			{Name: "head/cls", Kind: site.Linear, In: 4, Out: 3},
		},
		Params: []site.Param{
			{Name: "/embed/text/embeddings", Shape: []int{10, 4}},
			{Name: "/block/0/attn/q/weights", Shape: []int{4, 4}},
			{Name: "/block/0/attn/q/biases", Shape: []int{4}},
			{Name: "/head/cls/weights", Shape: []int{4, 3}},
			{Name: "/head/cls/biases", Shape: []int{3}},
		},
	}
}

func TestDispatchOnlyToResolvedSites(t *testing.T) {
	var calls []string
	m, err := New(layout(),
		Adapter{Name: "a", Method: fakeMethod{typ: "IN", targets: "input/*", calls: &calls}},
		Adapter{Name: "b", Method: fakeMethod{typ: "LIN", targets: "block/*/attn/q", calls: &calls}},
	)
	if err != nil {
		t.Fatal(err)
	}
	scope := mlmodel.NewStore().RootScope()
	for _, s := range m.Layout.Sites {
		if s.Kind == site.Input {
			m.Input(scope, s, nil, nil)
		} else {
			m.Linear(scope, s, nil, nil)
		}
	}
	want := "IN@input/text@/adapters/a,LIN@block/0/attn/q@/adapters/b"
	if got := strings.Join(calls, ","); got != want {
		t.Errorf("hook calls = %s, want %s", got, want)
	}
}

func TestNewRejectsConflicts(t *testing.T) {
	var calls []string
	l := layout()
	cases := map[string][]Adapter{
		"used twice": {
			{Name: "x", Method: fakeMethod{typ: "A", targets: "input/*", calls: &calls}},
			{Name: "x", Method: fakeMethod{typ: "B", targets: "head/*", calls: &calls}},
		},
		"already adapted": {
			{Name: "x", Method: fakeMethod{typ: "A", targets: "block/**", calls: &calls}},
			{Name: "y", Method: fakeMethod{typ: "A", targets: "block/0/attn/q", calls: &calls}},
		},
		"already trained": {
			{Name: "x", Method: fakeMethod{typ: "FULL", base: "head/**", calls: &calls}},
			{Name: "y", Method: fakeMethod{typ: "FULL2", base: "**/weights", calls: &calls}},
		},
		"matches no site": {
			{Name: "x", Method: fakeMethod{typ: "A", targets: "block/*/mlp/up", calls: &calls}},
		},
		"adapter name": {
			{Name: "bad/name", Method: fakeMethod{typ: "A", targets: "input/*", calls: &calls}},
		},
		"no method": {
			{Name: "x"},
		},
	}
	for want, adapters := range cases {
		_, err := New(l, adapters...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New(%s): err = %v, want it to contain %q", want, err, want)
		}
	}
	// Different methods on the same site compose.
	if _, err := New(l,
		Adapter{Name: "x", Method: fakeMethod{typ: "A", targets: "input/*", calls: &calls}},
		Adapter{Name: "y", Method: fakeMethod{typ: "B", targets: "input/*", calls: &calls}},
	); err != nil {
		t.Errorf("two methods on one site: %v", err)
	}
}

func TestApplyTrainableAndPlan(t *testing.T) {
	var calls []string
	m, err := New(layout(),
		Adapter{Name: "lin", Method: fakeMethod{typ: "LIN", targets: "block/*/attn/q", calls: &calls}},
		Adapter{Name: "head", Method: fakeMethod{typ: "FULL", base: "head/**", calls: &calls}},
		Adapter{Name: "old", Method: fakeMethod{typ: "IN", targets: "input/text", calls: &calls}, Frozen: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	scope := mlmodel.NewStore().RootScope()
	for _, p := range m.Layout.Params {
		i := strings.LastIndex(p.Name, "/")
		scope.Store().Scope(p.Name[:i]).VariableWithValue(p.Name[i+1:], make([]float32, p.Size())).SetTrainable(true)
	}
	scope.Store().Scope("/adapters/lin/block/0/attn/q").VariableWithValue("w", make([]float32, 8)).SetTrainable(false)
	scope.Store().Scope("/adapters/old/input/text").VariableWithValue("w", make([]float32, 8))
	m.ApplyTrainable(scope)

	want := map[string]bool{
		"/embed/text/embeddings":         false,
		"/block/0/attn/q/weights":        false,
		"/block/0/attn/q/biases":         false,
		"/head/cls/weights":              true,
		"/head/cls/biases":               true,
		"/adapters/lin/block/0/attn/q/w": true,
		"/adapters/old/input/text/w":     false,
	}
	for v := range scope.IterVariables() {
		if w, ok := want[v.Path()]; !ok {
			t.Errorf("unexpected variable %s", v.Path())
		} else if v.Trainable != w {
			t.Errorf("%s: trainable = %v, want %v", v.Path(), v.Trainable, w)
		}
	}

	p := m.Plan()
	base := 40 + 16 + 4 + 12 + 3
	if p.Total != base+8+8 {
		t.Errorf("plan total = %d, want %d", p.Total, base+16)
	}
	if p.Trainable != 8+15 {
		t.Errorf("plan trainable = %d, want %d", p.Trainable, 23)
	}
	if p.Frozen != p.Total-p.Trainable {
		t.Errorf("plan frozen = %d, want total-trainable", p.Frozen)
	}
	if len(p.Rows) != 4 || p.Rows[0].Site != "block/0/attn/q" || !p.Rows[1].Base || p.Rows[3].Trains {
		t.Errorf("plan rows = %+v", p.Rows)
	}
	if s := p.String(); !strings.Contains(s, "trainable params: 23 || all params: 91") {
		t.Errorf("plan text lacks the summary:\n%s", s)
	}
}
