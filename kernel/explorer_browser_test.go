package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The explorer's browser test: JupyterLab in headless Chromium (the machinery of
// jupyterlab_browser_test.go) runs a notebook that trains a tiny grid in fast mode into a
// store of the test's own (every point of rank {1, 4} × placement {text, image} but rank 4 ×
// image), then explores it with lab.Explore. The test moves the rank slider and the placement
// select as a researcher would and checks that the view shows the stored run of each point,
// with the score the store holds; presses Train on the missing point and checks that its run
// lands in the store and on the Pareto chart; pins a point and compares it with another (the
// differing answers counted as the stored answers differ); closes the explorer, whose cell
// then ends with its static view; and checks that no request left 127.0.0.1. Screenshots go
// to out/jupyterlab/explorer/ (explorer.png, after Train, is the README's docs/explorer.png).
//
// It needs what TestJupyterLabInBrowser needs (JupyterLab, chromium, the ECharts scripts) and
// the data sets; without them it is skipped, except under CI=true, where it fails.

const explorerNotebook = "explorer.ipynb"

// explorerCells are the test notebook's cells after the pin cell.
var explorerCells = []string{
	`import (
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/lab"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
)

// tiny is AdaLink's rank × placement on the instruction-tuned base, on a question it was
// pretrained on (so that 5 fast-mode steps score something), on a few examples.
var tiny = lab.Grid{Name: "tiny", Experiment: lab.Experiment{Base: bases.VLMInstruct, Task: "mnist-digit", MaxLen: 32,
	Steps: 5, Validation: 16, Test: 16, LR: 1e-2, Seed: 1, Methods: []peft.Method{adalink.Config{}}},
	Axes: []lab.Axis{lab.Ranks(1, 4), lab.Placements(lab.OnText, lab.OnImage)}}

%%
// Every point but rank 4 × image, which the test trains from the explorer.
for _, axes := range [][]lab.Axis{{lab.Ranks(1), lab.Placements(lab.OnText, lab.OnImage)}, {lab.Ranks(4), lab.Placements(lab.OnText)}} {
	g := tiny
	g.Axes = axes
	res, err := g.Run()
	lab.Check(err)
	if len(res.Runs) != len(axes[1].Labels) || len(res.Failed()) > 0 {
		panic("the tiny grid did not train")
	}
}`,
	"%%\nlab.Check(lab.Explore(tiny))",
}

// explorerJS reads the explorer's view in the notebook: its data attributes, the texts the
// test checks, and the Pareto chart's points (ECharts' own options).
const explorerJS = `(() => {
	const p = labPanel(%q);
	const root = p && p.content.node.querySelector('[data-peftlab-explorer]');
	if (!root) { return null; }
	const text = (sel) => { const e = root.querySelector(sel); return e ? e.textContent : ''; };
	const r = {mode: root.dataset.peftlabExplorer, point: root.dataset.point || '', state: root.dataset.state || '',
		status: root.dataset.status || '', run: root.dataset.run || '', score: root.dataset.score || '',
		pinned: root.dataset.pinned || '', seq: Number(root.dataset.seq || -1), shownScore: text('.peftlab-explorer-score'),
		shownRun: text('.peftlab-explorer-run'), caption: text('.peftlab-explorer-pareto'), compare: !!root.querySelector('.peftlab-explorer-compare'),
		differ: -1, of: -1, train: false, examples: root.querySelectorAll('.peftlab-explorer-examples tr').length, pareto: null};
	const d = root.querySelector('.peftlab-explorer-diff');
	if (d) { r.differ = Number(d.dataset.differ); r.of = Number(d.dataset.of); }
	const b = root.querySelector('[data-pe-op="train"]');
	r.train = !!b && !b.disabled;
	for (const el of root.querySelectorAll('[data-nbui-chart]')) {
		const inst = window.echarts && window.echarts.getInstanceByDom(el);
		if (!inst) { continue; }
		const o = inst.getOption();
		const title = (o.title && o.title[0] && o.title[0].text) || '';
		if (!title.startsWith('stored runs of')) { continue; }
		const pts = [];
		let selected = null;
		for (const s of o.series) {
			if (s.name === 'selected') { selected = s.data[0].value; continue; }
			if (s.name === 'Pareto front' || s.name === 'pinned') { continue; }
			for (const d of s.data) { pts.push(d.value || d); }
		}
		r.pareto = {points: pts, selected: selected, rendered: el.getAttribute('data-nbui-chart')};
	}
	return r;
})()`

type explorerView struct {
	Mode, Point, State, Status, Run, Score, Pinned string
	Seq                                            int
	ShownScore, ShownRun, Caption                  string
	Compare                                        bool
	Differ, Of                                     int
	Train                                          bool
	Examples                                       int
	Pareto                                         *struct {
		Points   [][]float64
		Selected []float64
		Rendered string
	}
}

// storedRun is what the test reads of a run in the store: its summary.json, for runs with a
// done.json.
type storedRun struct {
	ID        string             `json:"id"`
	State     string             `json:"state"`
	Rank      int                `json:"rank"`
	Placement string             `json:"placement"`
	Metric    string             `json:"metric"`
	Scores    map[string]float64 `json:"scores"`
	Trainable int                `json:"num_trainable_params"`
	Fast      bool               `json:"fast"`
}

// readStore reads the complete runs of a store by "rank=R placement=P".
func readStore(t *testing.T, dir string) map[string]storedRun {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storedRun{}
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "done.json")); err != nil {
			continue
		}
		var r storedRun
		if err := json.Unmarshal(mustRead(t, filepath.Join(dir, e.Name(), "summary.json")), &r); err != nil {
			t.Fatal(err)
		}
		if _, ok := r.Scores["test"]; !ok || r.State != "done" {
			continue
		}
		out[fmt.Sprintf("placement=%s rank=%d", r.Placement, r.Rank)] = r
	}
	return out
}

func TestExplorerInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the explorer's browser test trains four tiny runs and takes a few minutes")
	}
	chrome, root, shots := browserSetup(t, "out", "jupyterlab", "explorer")
	nb := newNotebook("explorer", "..")
	nb.Cells = nb.Cells[:2] // the title and the pin cell
	for _, src := range explorerCells {
		nb.Cells = append(nb.Cells, cell{CellType: "code", Source: multiline(src), Metadata: map[string]any{}})
	}
	for i := range nb.Cells {
		nb.Cells[i].ID = fmt.Sprintf("cell-%02d", i)
	}
	src, err := nb.encode()
	if err != nil {
		t.Fatal(err)
	}
	dir := labTree(t, root, map[string][]byte{explorerNotebook: src})
	store := t.TempDir()

	ctx, cancel := context.WithTimeout(context.Background(), 9*time.Minute)
	defer cancel()
	s := startLab(t, ctx, dir, filepath.Join(shots, "jupyterlab.log"), "PEFTLAB_RUNS="+store, "PEFTLAB_FAST=1")
	ls := &labSession{t: t, ctx: ctx, base: fmt.Sprintf("http://127.0.0.1:%d", s.Port), token: s.Token, shots: shots}
	ls.open(chrome)
	defer ls.b.close()
	defer func() {
		if t.Failed() {
			ls.shot("failed")
		}
	}()

	// 1. Open the notebook and run all: the first cells train the tiny grid, the last one
	// shows the explorer and keeps running while it serves the page.
	ls.navigate("/lab/tree/" + explorerNotebook)
	ls.wait("the notebook and its kernel", fmt.Sprintf(`(() => { const p = labPanel(%q); return p && p.context.isReady && p.sessionContext.isReady && kernelAnswers(p); })()`, explorerNotebook), 90*time.Second)
	ls.eval(`(window.jupyterapp.shell.collapseLeft(), true)`, nil) // the width goes to the notebook
	start := time.Now()
	// Not awaited: the command's promise settles when every cell has run, and the explorer's
	// cell runs until it is closed.
	ls.eval(`(window.jupyterapp.commands.execute('notebook:run-all-cells'), true)`, nil)
	view := func() explorerView {
		var v *explorerView
		ls.eval(fmt.Sprintf(explorerJS, explorerNotebook), &v)
		if v == nil {
			ls.t.Fatal("the explorer's view is not in the page")
		}
		return *v
	}
	// waitView waits for the live view to show point in state (and, when status is
	// "", no training under way).
	waitView := func(what, point, state string, limit time.Duration) explorerView {
		ls.t.Helper()
		cond := fmt.Sprintf(`(() => { const p = labPanel(%q); const r = p && p.content.node.querySelector('[data-peftlab-explorer="live"]');
			return !!r && Number(r.dataset.seq) >= 1 && r.dataset.point === %q && r.dataset.state === %q && !r.dataset.status; })()`, explorerNotebook, point, state)
		ls.wait(what, cond, limit)
		time.Sleep(300 * time.Millisecond) // the view's chart scripts
		return view()
	}
	v := waitView("the live explorer at its first point", "placement=text rank=1", "stored", 6*time.Minute)
	t.Logf("the explorer answered %.1fs after Run All", time.Since(start).Seconds())
	running := ls.modelAt(explorerNotebook)
	running.Cells = running.Cells[:len(running.Cells)-1] // the explorer's, still running
	if fails := inspect(running); len(fails) > 0 {
		for _, f := range fails {
			t.Errorf("before exploring: %s", f)
		}
	}
	runs := readStore(t, store)
	if len(runs) != 3 {
		t.Fatalf("the store holds %d complete runs, want the 3 the notebook trained: %v", len(runs), runs)
	}
	// checkStored checks that the view shows the store's run of its point, with its score.
	checkStored := func(when string, v explorerView) {
		t.Helper()
		r, ok := runs[v.Point]
		switch {
		case !ok:
			t.Errorf("%s: the view shows %s, which the store does not hold", when, v.Point)
		case !r.Fast:
			t.Errorf("%s: the store's run %s is not a fast-mode run", when, r.ID)
		case v.Run != r.ID || strings.TrimSpace(v.ShownRun) != r.ID:
			t.Errorf("%s: the view shows run %q (%q), the store's run of %s is %s", when, v.Run, v.ShownRun, v.Point, r.ID)
		case v.Score != strconv.FormatFloat(r.Scores["test"], 'g', -1, 64):
			t.Errorf("%s: the view's score is %q, the store's %v", when, v.Score, r.Scores["test"])
		case v.ShownScore != fmt.Sprintf("%.1f%%", 100*r.Scores["test"]):
			t.Errorf("%s: the view shows the score %q, the store's is %.1f%%", when, v.ShownScore, 100*r.Scores["test"])
		case v.Examples == 0:
			t.Errorf("%s: the view shows no test examples", when)
		case v.Pareto == nil || v.Pareto.Rendered != "rendered":
			t.Errorf("%s: the Pareto chart is not drawn: %+v", when, v.Pareto)
		}
	}
	checkStored("first", v)
	ls.scrollTo(`[data-peftlab-explorer]`)
	ls.shot("first")

	// 2. The rank slider and the placement select, as a researcher moves them.
	slide := func(i int) {
		ls.eval(fmt.Sprintf(`(() => { const r = labPanel(%q).content.node.querySelector('[data-peftlab-explorer] input[type=range][data-pe-axis="rank"]');
			r.value = %d; r.dispatchEvent(new Event('input', {bubbles: true})); r.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, explorerNotebook, i), nil)
	}
	choose := func(axis string, i int) {
		ls.eval(fmt.Sprintf(`(() => { const s = labPanel(%q).content.node.querySelector('[data-peftlab-explorer] select[data-pe-axis=%q]');
			s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); return true; })()`, explorerNotebook, axis, strconv.Itoa(i)), nil)
	}
	press := func(op string) {
		ls.eval(fmt.Sprintf(`(() => { const b = labPanel(%q).content.node.querySelector('[data-peftlab-explorer] [data-pe-op=%q]');
			if (!b || b.disabled) { throw new Error('no enabled button ' + %q); } b.click(); return true; })()`, explorerNotebook, op, op), nil)
	}
	slide(1)
	checkStored("rank slider to 4", waitView("rank 4, text", "placement=text rank=4", "stored", 30*time.Second))
	choose("placement", 1)
	v = waitView("rank 4, image (not stored)", "placement=image rank=4", "missing", 30*time.Second)
	if !v.Train || v.Run != "" || v.Score != "" {
		t.Errorf("the missing point: Train enabled %v, run %q, score %q", v.Train, v.Run, v.Score)
	}
	slide(0)
	checkStored("rank slider to 1 at image", waitView("rank 1, image", "placement=image rank=1", "stored", 30*time.Second))
	slide(1)
	v = waitView("rank 4, image again", "placement=image rank=4", "missing", 30*time.Second)
	if v.Pareto == nil || len(v.Pareto.Points) != 3 {
		t.Fatalf("before training, the Pareto chart has %+v, want the 3 stored points", v.Pareto)
	}

	// 3. Train the missing point: it is stored, shown from the store, and on the chart.
	press("train")
	v = waitView("the trained point", "placement=image rank=4", "stored", 4*time.Minute)
	runs = readStore(t, store)
	if len(runs) != 4 {
		t.Fatalf("after Train the store holds %d complete runs, want 4", len(runs))
	}
	checkStored("after Train", v)
	r := runs["placement=image rank=4"]
	if v.Pareto == nil || len(v.Pareto.Points) != 4 || len(v.Pareto.Selected) != 2 ||
		v.Pareto.Selected[0] != float64(max(1, r.Trainable)) || math.Abs(v.Pareto.Selected[1]-100*r.Scores["test"]) > 1e-9 {
		t.Errorf("after Train, the Pareto chart is %+v; want 4 points and the selected at (%d, %.4g)", v.Pareto, r.Trainable, 100*r.Scores["test"])
	}
	var progress []labProgress
	ls.eval(fmt.Sprintf(labProgressJS, explorerNotebook), &progress)
	if len(progress) == 0 || !strings.Contains(progress[len(progress)-1].Text, "done in") || !strings.Contains(progress[len(progress)-1].Text, "placement=image rank=4") {
		t.Errorf("no finished progress display of the training: %+v", progress)
	}
	ls.scrollTo(`[data-peftlab-explorer]`)
	ls.shot("trained")
	if err := ls.shotOf(`[data-peftlab-explorer]`, filepath.Join(shots, "explorer.png")); err != nil {
		t.Errorf("screenshot of the explorer: %v", err)
	}

	// 4. Compare: pin the trained point, select another; the differing answers are counted as
	// the stored answers differ.
	press("pin")
	waitView("the pinned point", "placement=image rank=4", "stored", 30*time.Second)
	slide(0)
	v = waitView("the comparison", "placement=image rank=1", "stored", 30*time.Second)
	a := answers(t, store, r.ID)
	b := answers(t, store, runs["placement=image rank=1"].ID)
	differ := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			differ++
		}
	}
	if !v.Compare || v.Pinned != "placement=image rank=4" || v.Differ != differ || v.Of != len(a) {
		t.Errorf("comparing: table %v, pinned %q, %d of %d answers differ; the stored answers differ in %d of %d", v.Compare, v.Pinned, v.Differ, v.Of, differ, len(a))
	}
	ls.scrollTo(`[data-peftlab-explorer]`)
	ls.shot("compare")
	if err := ls.shotOf(`[data-peftlab-explorer]`, filepath.Join(shots, "explorer-compare.png")); err != nil {
		t.Errorf("screenshot of the explorer: %v", err)
	}

	// 5. Close: the cell ends, leaving the static view of the last state; no cell failed.
	press("close")
	ls.wait("the explorer's cell to end", fmt.Sprintf(labCellsDoneJS, explorerNotebook), 60*time.Second)
	v = view()
	if v.Mode != "static" || v.Point != "placement=image rank=1" || v.Pinned != "placement=image rank=4" || !v.Compare {
		t.Errorf("after Close: %s view of %q pinned %q (compare %v), want the static view of the last state", v.Mode, v.Point, v.Pinned, v.Compare)
	}
	if fails := inspect(ls.modelAt(explorerNotebook)); len(fails) > 0 {
		for _, f := range fails {
			t.Errorf("after Close: %s", f)
		}
	}
	ls.shot("closed")

	// 6. Nothing left this machine.
	ls.checkLocalOnly()
}

// answers reads a stored run's test answers.
func answers(t *testing.T, store, id string) []string {
	t.Helper()
	var a map[string][]string
	if err := json.Unmarshal(mustRead(t, filepath.Join(store, id, "answers.json")), &a); err != nil {
		t.Fatal(err)
	}
	return a["test"]
}

// scrollTo scrolls the page so that the first element matching the selector is at the top.
func (ls *labSession) scrollTo(selector string) {
	ls.eval(fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (e) { e.scrollIntoView({block: 'start'}); } return true; })()`, selector), nil)
	time.Sleep(500 * time.Millisecond)
}

// shotOf writes a PNG of the element matching selector (its part in the viewport, after
// scrolling it to the top) to path.
func (ls *labSession) shotOf(selector, path string) error {
	ls.scrollTo(selector)
	var rect struct{ X, Y, Width, Height float64 }
	ls.eval(fmt.Sprintf(`(() => { const r = document.querySelector(%q).getBoundingClientRect();
		return {x: r.x, y: r.y, width: r.width, height: Math.min(r.height, window.innerHeight - r.y)}; })()`, selector), &rect)
	var res struct {
		Data string `json:"data"`
	}
	ctx, cancel := context.WithTimeout(ls.ctx, 20*time.Second)
	defer cancel()
	err := ls.b.call(ctx, ls.page, "Page.captureScreenshot", map[string]any{"format": "png",
		"clip": map[string]any{"x": rect.X, "y": rect.Y, "width": rect.Width, "height": rect.Height, "scale": 1}}, &res)
	if err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(res.Data)
	if err != nil {
		return err
	}
	ls.t.Logf("screenshot %s (%.0fx%.0f)", path, rect.Width, rect.Height)
	return os.WriteFile(path, png, 0o644)
}
