package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
)

// The point the explorer builds for a selection is the one Grid.Run builds at the same place:
// same experiment, labels and sweep key, for every point of a grid mixing variants, ranks and
// seeds.
func TestExplorerPointsAreTheGridsPoints(t *testing.T) {
	g := Grid{Name: "mix", Experiment: tinyExperiment(), LRs: []float64{1e-2, 1e-1}, Axes: []Axis{
		Variants(Variant{Name: "adalink", Methods: []peft.Method{adalink.Config{Rank: 4}}},
			Variant{Name: "lora", Methods: []peft.Method{lora.Config{Rank: 4, Alpha: 8}}, LRs: []float64{3e-2}}),
		Ranks(2, 8), Seeds(1, 2, 3)}}
	pts, err := g.points(false)
	if err != nil {
		t.Fatal(err)
	}
	xg := &xgrid{g: g}
	all := xg.allIndices()
	if len(all) != len(pts) {
		t.Fatalf("%d index combinations, the grid has %d points", len(all), len(pts))
	}
	for i, idx := range all {
		p, err := g.pointAt(idx)
		if err != nil {
			t.Fatal(err)
		}
		want := pts[i]
		if !reflect.DeepEqual(p.labels, want.labels) || p.sweepKey != want.sweepKey || !reflect.DeepEqual(p.x, want.x) {
			t.Errorf("point %v: got %v %q %+v, want %v %q %+v", idx, p.labels, p.sweepKey, p.x, want.labels, want.sweepKey, want.x)
		}
	}
	if _, err := g.pointAt([]int{0, 5, 0}); err == nil {
		t.Error("pointAt accepted a value index past the axis")
	}
}

// fakePage is a front end whose messages are given in advance; it records every view.
type fakePage struct {
	mu    sync.Mutex
	views []string
	ch    chan string
}

func newFakePage(msgs ...pageMsg) *fakePage {
	f := &fakePage{ch: make(chan string, len(msgs))}
	for i, m := range msgs {
		m.N = i + 1
		b, _ := json.Marshal(m)
		f.ch <- string(b)
	}
	return f
}

func (f *fakePage) show(h string) {
	f.mu.Lock()
	f.views = append(f.views, h)
	f.mu.Unlock()
}

func (f *fakePage) messages() <-chan string { return f.ch }

func (f *fakePage) nudge() {}

// attr reads a data attribute of a view's root element.
func attr(view, name string) string {
	root := view[:strings.Index(view, ">")]
	m := regexp.MustCompile(`data-` + name + `="([^"]*)"`).FindStringSubmatch(root)
	if m == nil {
		return ""
	}
	return m[1]
}

// The explorer shows the runs a grid stored, as the grid would find them (the learning rate
// chosen on validation with the first seed), trains a missing point on request only, and then
// shows it from the store and on the Pareto chart; pinning compares two points' answers.
func TestExplorerServesTheStore(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	trained := countTrains(s)
	stored := Grid{Name: "tiny", Experiment: tinyExperiment(), LRs: []float64{1e-2, 1e-1}, Budget: -1, Store: s,
		Axes: []Axis{Ranks(2), Seeds(1, 2)}}
	res, err := stored.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 2 || len(res.Failed()) > 0 {
		t.Fatalf("the grid gave %d runs, %d failed", len(res.Runs), len(res.Failed()))
	}
	before := len(*trained)

	g := stored
	g.Axes = []Axis{Ranks(2, 4), Seeds(1, 2)}
	x, err := newExplorer(Explorer{Grids: []Grid{g}, Examples: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Runs {
		p := x.grids[0].point(0, []int{0, i})
		if p.state != pointStored || p.sum.ID != r.ID || p.lr != r.Experiment.LR {
			t.Errorf("rank 2 seed %d: state %s (%s), run %s at lr %g; the grid's is %s at lr %g", i+1, p.state, p.why, p.sum.ID, p.lr, r.ID, r.Experiment.LR)
		}
	}
	missing := x.grids[0].point(0, []int{1, 0})
	if missing.state != pointMissing || !strings.Contains(missing.why, "learning-rate sweep") {
		t.Errorf("rank 4: state %s (%s), want missing for want of its sweep", missing.state, missing.why)
	}
	if len(*trained) != before {
		t.Fatalf("reading the store trained %d runs", len(*trained)-before)
	}

	page := newFakePage(
		pageMsg{Op: "hello", Sel: []int{0, 0}},
		pageMsg{Op: "select", Sel: []int{1, 0}},
		pageMsg{Op: "train", Sel: []int{1, 0}},
		pageMsg{Op: "pin", Sel: []int{1, 0}},
		pageMsg{Op: "select", Sel: []int{0, 0}},
		pageMsg{Op: "close", Sel: []int{0, 0}},
	)
	reason := x.serve(page, "t", time.Minute)
	if !strings.HasPrefix(reason, "Closed") {
		t.Errorf("the explorer ended with %q, want Closed", reason)
	}
	v := page.views
	// 0: first view, 1: hello, 2: select rank 4, 3: training, 4: trained, 5: pinned, 6: compare.
	if len(v) != 7 {
		t.Fatalf("%d views, want 7", len(v))
	}
	first := res.Runs[0]
	if attr(v[1], "point") != "rank=2 seed=1" || attr(v[1], "state") != "stored" || attr(v[1], "run") != first.ID {
		t.Errorf("first view: point %q state %q run %q, want rank=2 seed=1 stored %s", attr(v[1], "point"), attr(v[1], "state"), attr(v[1], "run"), first.ID)
	}
	if got := attr(v[1], "score"); got != strconv.FormatFloat(first.Score, 'g', -1, 64) {
		t.Errorf("first view: score %q, the run's is %g", got, first.Score)
	}
	if !strings.Contains(v[1], "peftlab-explorer-examples") || !strings.Contains(v[1], "the first 3 of") {
		t.Error("the first view shows no examples")
	}
	if attr(v[2], "point") != "rank=4 seed=1" || attr(v[2], "state") != "missing" || attr(v[2], "run") != "" {
		t.Errorf("after selecting rank 4: point %q state %q run %q", attr(v[2], "point"), attr(v[2], "state"), attr(v[2], "run"))
	}
	if !regexp.MustCompile(`data-pe-op="train" [^>]*>Train<`).MatchString(v[2]) || strings.Contains(v[2], `data-pe-op="train" title="train this point (it is stored and joins the chart)" disabled`) {
		t.Error("the missing point's Train button is not enabled")
	}
	if attr(v[3], "status") != "training" || !strings.Contains(v[3], " disabled>") {
		t.Error("while training, the view does not say so with its controls disabled")
	}
	if n := len(*trained) - before; n != 2 {
		t.Errorf("training rank 4 trained %d runs, want 2 (the sweep's learning rates; the winner is then scored on test)", n)
	}
	sums, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var trainedRun *Summary
	for i := range sums {
		if sums[i].ID == attr(v[4], "run") {
			trainedRun = &sums[i]
		}
	}
	switch {
	case attr(v[4], "state") != "stored" || trainedRun == nil:
		t.Fatalf("after training: state %q, run %q not in the store", attr(v[4], "state"), attr(v[4], "run"))
	case trainedRun.Rank != 4 || trainedRun.Seed != 1:
		t.Errorf("the trained run is rank %d seed %d", trainedRun.Rank, trainedRun.Seed)
	case attr(v[4], "score") != strconv.FormatFloat(trainedRun.Scores[SplitTest], 'g', -1, 64):
		t.Errorf("after training: score %q, the store's %g", attr(v[4], "score"), trainedRun.Scores[SplitTest])
	}
	if !strings.Contains(v[2], "1 configurations") || !strings.Contains(v[4], "2 configurations") || !strings.Contains(v[4], "the selected one (ringed)") {
		t.Errorf("the Pareto caption does not count the trained point: %q then %q", caption(v[2]), caption(v[4]))
	}
	if attr(v[5], "pinned") != "rank=4 seed=1" || attr(v[6], "pinned") != "rank=4 seed=1" || attr(v[6], "point") != "rank=2 seed=1" {
		t.Errorf("pinning: pinned %q, then %q at %q", attr(v[5], "pinned"), attr(v[6], "pinned"), attr(v[6], "point"))
	}
	if !strings.Contains(v[6], "peftlab-explorer-compare") {
		t.Error("the comparison table is missing")
	}
	pinned, _ := x.grids[0].run(x.grids[0].point(0, []int{1, 0}))
	sel, _ := x.grids[0].run(x.grids[0].point(0, []int{0, 0}))
	a, _ := pinned.Answers(SplitTest)
	b, _ := sel.Answers(SplitTest)
	differ := 0
	for i := range a {
		if a[i] != b[i] {
			differ++
		}
	}
	if m := regexp.MustCompile(`data-differ="(\d+)" data-of="(\d+)"`).FindStringSubmatch(v[6]); m == nil || m[1] != fmt.Sprint(differ) || m[2] != fmt.Sprint(len(a)) {
		t.Errorf("the comparison says %v differ, the stored answers %d of %d", m, differ, len(a))
	}

	// The static view and the text say the same.
	static := x.html(viewMode{id: "s", reason: "closed"})
	if attr(static, "peftlab-explorer") != "static" || strings.Contains(static, "<script>\n(() => {\nconst root") || strings.Contains(static, "data-pe-op") {
		t.Error("the static view has controls or their script")
	}
	var text bytes.Buffer
	x.text(&text, "outside a notebook")
	if !strings.Contains(text.String(), sel.ID) || !strings.Contains(text.String(), "← selected") {
		t.Errorf("the text view lacks the run or the mark:\n%s", text.String())
	}
}

func caption(view string) string {
	m := regexp.MustCompile(`class="peftlab-explorer-pareto"[^>]*>([^<]*)<`).FindStringSubmatch(view)
	if m == nil {
		return ""
	}
	return m[1]
}

// Without a page answering, the explorer gives up after the hello timeout: the caller then
// renders the static view, and nothing hangs.
func TestExplorerWithoutAPage(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	g := Grid{Name: "tiny", Experiment: tinyExperiment(), Axes: []Axis{Ranks(2, 4)}, Store: s}
	x, err := newExplorer(Explorer{Grids: []Grid{g}, Select: map[string]string{"rank": "4"}})
	if err != nil {
		t.Fatal(err)
	}
	page := newFakePage()
	start := time.Now()
	reason := x.serve(page, "t", 200*time.Millisecond)
	if !strings.Contains(reason, "no page answered") || time.Since(start) > 10*time.Second {
		t.Errorf("without a page: %q after %s", reason, time.Since(start))
	}
	if len(page.views) != 1 || attr(page.views[0], "point") != "rank=4" || attr(page.views[0], "state") != "missing" {
		t.Errorf("views %d, first at %q (%q)", len(page.views), attr(page.views[0], "point"), attr(page.views[0], "state"))
	}
}

// Bad explorers say what is wrong.
func TestExplorerErrors(t *testing.T) {
	g := Grid{Name: "tiny", Experiment: tinyExperiment(), Axes: []Axis{Ranks(2, 4)}, Store: &Store{}}
	for name, c := range map[string]struct {
		e    Explorer
		want string
	}{
		"no grid":    {Explorer{}, "no grid"},
		"bad value":  {Explorer{Grids: []Grid{g}, Select: map[string]string{"rank": "3"}}, `no value "3" (it has 2, 4)`},
		"bad axis":   {Explorer{Grids: []Grid{g}, Select: map[string]string{"placement": "text"}}, `the axis "placement", which no grid has`},
		"same names": {Explorer{Grids: []Grid{g, g}}, `two grids are named "tiny"`},
	} {
		_, err := newExplorer(c.e)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
}

// With several grids, the page's grid select switches grids, and each grid keeps its own
// selection; a message older than one applied (the page's messages may arrive out of order)
// is ignored.
func TestExplorerSwitchesGrids(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	a := Grid{Name: "ranks", Experiment: tinyExperiment(), Axes: []Axis{Ranks(2, 4)}, Store: s}
	b := Grid{Name: "seeds", Experiment: tinyExperiment(), Axes: []Axis{Seeds(1, 2, 3)}, Store: s}
	x, err := newExplorer(Explorer{Grids: []Grid{a, b}, Select: map[string]string{"seed": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	page := newFakePage(
		pageMsg{Op: "hello", Grid: 0, Sel: []int{1}},
		pageMsg{Op: "select", Grid: 1, Sel: []int{1}}, // the grid select changed; Sel is the ranks grid's
		pageMsg{Op: "select", Grid: 1, Sel: []int{2}},
		pageMsg{Op: "select", Grid: 0, Sel: []int{1}},
		pageMsg{Op: "close", Grid: 0, Sel: []int{1}},
	)
	// An old message delivered late: its counter is below the last one applied.
	late, _ := json.Marshal(pageMsg{Op: "select", N: 1, Grid: 1, Sel: []int{0}})
	msgs := make(chan string, 10)
	for i := 0; i < 4; i++ {
		msgs <- <-page.ch
	}
	msgs <- string(late)
	msgs <- <-page.ch
	page.ch = msgs
	if reason := x.serve(page, "t", time.Minute); !strings.HasPrefix(reason, "Closed") {
		t.Fatalf("ended with %q", reason)
	}
	want := []struct{ grid, point string }{
		{"ranks", "rank=2"}, {"ranks", "rank=4"}, {"seeds", "seed=2"}, {"seeds", "seed=3"}, {"ranks", "rank=4"},
	}
	if len(page.views) != len(want) {
		t.Fatalf("%d views, want %d", len(page.views), len(want))
	}
	for i, w := range want {
		if g, p := attr(page.views[i], "grid"), attr(page.views[i], "point"); g != w.grid || p != w.point {
			t.Errorf("view %d: %s at %s, want %s at %s", i, g, p, w.grid, w.point)
		}
	}
	if !strings.Contains(page.views[2], `data-pe-grid`) {
		t.Error("with two grids, the view has no grid select")
	}
}
