package lab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tasks/taskstest"
)

// tinyStore is a store whose only base is a tiny freshly initialised LM ("tiny", the same
// weights at every load) and whose only task is lights, so that runs take a second.
func tinyStore(t testing.TB, dir string) *Store {
	t.Helper()
	backendtest.Backend(t)
	task, tok := taskstest.Lights(t)
	cfg := model.Config{Name: "tiny-lm", Vocab: tok.VocabSize(), Width: 32, Heads: 2, Blocks: 1, MLPDim: 64, MaxLen: 16}
	var mu sync.Mutex
	var id string
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Fast = false
	s.Backend = backendtest.Backend(t)
	s.LoadBase = func(name string) (*bases.Base, error) {
		if name != "tiny" {
			return nil, fmt.Errorf("unknown base %q", name)
		}
		scope := mlmodel.NewStore().RootScope()
		if err := scope.Store().SetRNGStateFromSeed(7); err != nil {
			return nil, err
		}
		b := backendtest.Backend(t)
		if err := model.Init(b, scope, cfg); err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		if id == "" {
			h, err := peft.BaseHash(scope)
			if err != nil {
				return nil, err
			}
			id = h
		}
		return &bases.Base{Name: "tiny", Config: cfg, Scope: scope, Tokenizer: tok, Report: &bases.Report{BaseHash: id}}, nil
	}
	s.LoadTask = func(name string) (*tasks.Task, error) {
		if name != "lights" {
			return nil, fmt.Errorf("unknown task %q", name)
		}
		c := *task
		return &c, nil
	}
	return s
}

// tinyExperiment is AdaLink on the tiny base, quick.
func tinyExperiment() Experiment {
	return Experiment{Base: "tiny", Task: "lights", Steps: 6, BatchSize: 8, LR: 1e-2, Seed: 1,
		Methods: []peft.Method{adalink.Config{Rank: 4}}}
}

// countTrains counts OnTrain calls.
func countTrains(s *Store) *[]string {
	var ids []string
	var mu sync.Mutex
	s.OnTrain = func(id string) {
		mu.Lock()
		ids = append(ids, id)
		mu.Unlock()
	}
	return &ids
}

// TestRunIsMemoized asks for one experiment twice: the second answer comes from the store
// without training (OnTrain is not called again), with the same scores, curves and plan; a
// changed seed is another run and trains.
func TestRunIsMemoized(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	trained := countTrains(s)
	x := tinyExperiment()
	first, err := s.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	if first.Reused || len(*trained) != 1 || first.State != Done {
		t.Fatalf("first run: reused=%v trained=%v state=%s", first.Reused, *trained, first.State)
	}
	for _, sp := range []string{SplitValidation, SplitTest} {
		if _, ok := first.Scores[sp]; !ok {
			t.Errorf("first run has no %s score: %v", sp, first.Scores)
		}
	}
	second, err := s.Run(x)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Reused || len(*trained) != 1 {
		t.Fatalf("second run: reused=%v, trained %d times", second.Reused, len(*trained))
	}
	if !maps_equal(first.Scores, second.Scores) || second.ID != first.ID || !slices.Equal(first.Plan, second.Plan) {
		t.Errorf("stored run differs: %v %v / %v %v", first.Scores, first.Plan, second.Scores, second.Plan)
	}
	if second.Record == nil || len(second.Record.Steps) != x.Steps {
		t.Errorf("stored run lost its curve: %+v", second.Record)
	}
	x.Name = "renamed"
	if r, err := s.Run(x); err != nil || !r.Reused || r.Name != "renamed" {
		t.Errorf("a new name is the same run: reused=%v name=%q err=%v", r.Reused, r.Name, err)
	}
	x.Seed = 2
	if r, err := s.Run(x); err != nil || r.Reused || r.ID == first.ID || len(*trained) != 2 {
		t.Errorf("another seed must train: reused=%v id=%s trained=%d err=%v", r.Reused, r.ID, len(*trained), err)
	}
	// The adapter files are there, and the summary lists the run.
	ads, err := s.Adapters(first.ID)
	if err != nil || len(ads) != 1 || ads["adalink"] != first.AdapterDir(adalink.PeftType) {
		t.Fatalf("Adapters: %v, %v", ads, err)
	}
	if _, err := os.Stat(filepath.Join(ads["adalink"], peft.WeightsFile)); err != nil {
		t.Error(err)
	}
	sums, err := s.List()
	if err != nil || len(sums) != 2 {
		t.Fatalf("List: %d runs, %v", len(sums), err)
	}
	for _, sum := range sums {
		if sum.State != Done || sum.Method != adalink.PeftType || sum.Rank != 4 || sum.Trainable == 0 || sum.AdapterBytes == 0 {
			t.Errorf("summary %+v", sum)
		}
	}
}

func maps_equal(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestFailedRunIsStored plants a diverging learning rate: the run is stored as failed with
// its error, returned as failed without training again, and Forget lets it train again.
func TestFailedRunIsStored(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	trained := countTrains(s)
	x := tinyExperiment()
	x.Methods = []peft.Method{full.Config{}}
	x.LR = 1e30
	r, err := s.Run(x)
	if err == nil || r.State != Failed || !strings.Contains(r.Error, "loss") {
		t.Fatalf("diverging run: state=%s error=%q err=%v", r.State, r.Error, err)
	}
	again, err := s.Run(x)
	if err == nil || again.State != Failed || !again.Reused || len(*trained) != 1 {
		t.Fatalf("failed run asked again: state=%s reused=%v trained=%d err=%v", again.State, again.Reused, len(*trained), err)
	}
	if err := s.Forget(r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(x); err == nil || len(*trained) != 2 {
		t.Errorf("after Forget the run trains again: trained=%d err=%v", len(*trained), err)
	}
}

// TestBadExperimentStoresNothing: configuration errors are reported before anything is
// written.
func TestBadExperimentStoresNothing(t *testing.T) {
	dir := t.TempDir()
	s := tinyStore(t, dir)
	for _, x := range []Experiment{
		{Base: "tiny", Task: "lights", Methods: []peft.Method{adalink.Config{Rank: 4}}}, // no LR
		{Base: "nope", Task: "lights", LR: 1e-2, Methods: []peft.Method{adalink.Config{Rank: 4}}},
		{Base: "tiny", Task: "nope", LR: 1e-2, Methods: []peft.Method{adalink.Config{Rank: 4}}},
		{Base: "tiny", Task: "lights", LR: 1e-2, Methods: []peft.Method{adalink.Config{Rank: 4000}}},
		{Base: "tiny", Task: "lights", LR: math.NaN(), Methods: []peft.Method{adalink.Config{Rank: 4}}},
	} {
		if _, err := s.Run(x); err == nil {
			t.Errorf("%+v: no error", x)
		} else if strings.Contains(err.Error(), "panic") || strings.Contains(err.Error(), "goroutine") {
			t.Errorf("%+v: %v", x, err)
		}
	}
	if sums, _ := s.List(); len(sums) != 0 {
		t.Errorf("bad experiments left %d runs: %+v", len(sums), sums)
	}
}

// longSteps is the length of the run TestKilledRunRecovers kills: long enough to be killed
// mid-run, short enough to train again in a few seconds.
const longSteps = 1500

// childEnv is set in the environment of a test binary re-run as a child process.
const childEnv = "PEFTLAB_LAB_TEST_CHILD"

// TestChild is the child process of the tests below; it does nothing otherwise.
func TestChild(t *testing.T) {
	role := os.Getenv(childEnv)
	if role == "" {
		t.Skip("only runs as a child process of another test")
	}
	dir := os.Getenv("PEFTLAB_LAB_TEST_STORE")
	s := tinyStore(t, dir)
	s.OnTrain = func(id string) { fmt.Printf("TRAINED %s\n", id) }
	switch role {
	case "long":
		x := tinyExperiment()
		x.Steps, x.Seed = longSteps, 99 // killed long before it ends
		_, err := s.Run(x)
		t.Fatalf("the long run returned: %v", err)
	case "grid":
		g := Grid{Experiment: tinyExperiment(), Axes: []Axis{Ranks(2, 4), Seeds(1, 2, 3)}, Store: s, Budget: -1}
		res, err := g.Run()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Runs {
			fmt.Printf("POINT %s %s %v\n", r.ID, r.State, r.Scores[SplitTest])
		}
	}
}

// child starts this test binary as a child process in role.
func child(t *testing.T, role, dir string) (*exec.Cmd, *bytes.Buffer) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+role, "PEFTLAB_LAB_TEST_STORE="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// fileHashes maps every file under dir (but lock files) to its SHA-256.
func fileHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() == lockFile {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		h := sha256.Sum256(data)
		out[path] = hex.EncodeToString(h[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestKilledRunRecovers kills a training child process with SIGKILL mid-run: the store stays
// readable, the run reads as interrupted (not running), the next request retrains it from
// the start, another run's files are untouched, and no temporary file is left behind.
func TestKilledRunRecovers(t *testing.T) {
	dir := t.TempDir()
	s := tinyStore(t, dir)
	other, err := s.Run(tinyExperiment())
	if err != nil {
		t.Fatal(err)
	}
	before := fileHashes(t, other.Dir)

	cmd, out := child(t, "long", dir)
	x := tinyExperiment()
	x.Steps, x.Seed = longSteps, 99
	p, err := s.prepare(x)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var st Status
		if readJSON(filepath.Join(p.dir, statusFile), &st) == nil && st.Step >= 2 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the child never reached step 2:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st, _ := s.state(p.id); st != Running {
		t.Errorf("a live training run reads as %s", st)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	sum, err := s.Summary(p.id)
	if err != nil {
		t.Fatal(err)
	}
	if sum.State != Interrupted || sum.Step < 2 {
		t.Errorf("killed run: state %s at step %d, want interrupted", sum.State, sum.Step)
	}
	var onDisk Status
	if err := readJSON(filepath.Join(p.dir, statusFile), &onDisk); err != nil || onDisk.State != Interrupted || !strings.Contains(onDisk.Error, "stopped at step") {
		t.Errorf("status.json after the kill: %+v, %v", onDisk, err)
	}
	sums, err := s.List()
	if err != nil || len(sums) != 2 {
		t.Fatalf("List after the kill: %d runs, %v", len(sums), err)
	}

	trained := countTrains(s)
	r, err := s.Run(x)
	if err != nil || r.Reused || len(*trained) != 1 || r.State != Done || len(r.Record.Steps) != x.Steps {
		t.Fatalf("retraining the killed run: reused=%v trained=%d state=%s err=%v", r.Reused, len(*trained), r.State, err)
	}
	if st, _ := s.state(p.id); st != Done {
		t.Errorf("retrained run reads as %s", st)
	}
	if after := fileHashes(t, other.Dir); !maps_equal_s(before, after) {
		t.Errorf("the other run's files changed:\n%v\n%v", before, after)
	}
	assertNoTemp(t, dir)
}

func maps_equal_s(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// assertNoTemp fails when a temporary file is left under dir.
func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
}

// TestInterruptedRunRetrainsOnRequest: a run directory left by a dead process (status
// "running", lock free, no done.json) is trained again by the next Run, from the start.
func TestInterruptedRunRetrainsOnRequest(t *testing.T) {
	dir := t.TempDir()
	s := tinyStore(t, dir)
	trained := countTrains(s)
	x := tinyExperiment()
	p, err := s.prepare(x)
	if err != nil {
		t.Fatal(err)
	}
	// What a kernel killed at step 3 leaves: config, a running status, a partial record and
	// a temporary file of an interrupted write.
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	_ = writeJSON(filepath.Join(p.dir, configFile), runConfig{ID: p.id, Identity: p.identity})
	_ = writeJSON(filepath.Join(p.dir, statusFile), Status{State: Running, PID: 1 << 30, Step: 3, Steps: 6})
	_ = os.WriteFile(filepath.Join(p.dir, ".record.json.tmp-123"), []byte("{"), 0o644)
	if st, _ := s.state(p.id); st != Interrupted {
		t.Fatalf("dead run reads as %s", st)
	}
	r, err := s.Run(x)
	if err != nil || r.Reused || len(*trained) != 1 || r.State != Done {
		t.Fatalf("interrupted run: reused=%v trained=%d state=%s err=%v", r.Reused, len(*trained), r.State, err)
	}
	assertNoTemp(t, dir)
}

// TestTwoProcessesShareAGrid runs one grid in two processes on one store at once: both get
// every point, each point trains exactly once, and nothing is lost.
func TestTwoProcessesShareAGrid(t *testing.T) {
	dir := t.TempDir()
	a, outA := child(t, "grid", dir)
	b, outB := child(t, "grid", dir)
	errA, errB := a.Wait(), b.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("children: %v / %v\n%s\n%s", errA, errB, outA, outB)
	}
	trained := map[string]int{}
	points := func(out string) map[string]string {
		m := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) == 2 && f[0] == "TRAINED":
				trained[f[1]]++
			case len(f) == 4 && f[0] == "POINT":
				m[f[1]] = f[2] + " " + f[3]
			}
		}
		return m
	}
	pa, pb := points(outA.String()), points(outB.String())
	if len(pa) != 6 || !maps_equal_s(pa, pb) {
		t.Errorf("the two processes disagree or miss points:\n%v\n%v", pa, pb)
	}
	for id, n := range trained {
		if n != 1 {
			t.Errorf("point %s trained %d times", id, n)
		}
	}
	if len(trained) != 6 {
		t.Errorf("%d points trained, want 6: %v", len(trained), trained)
	}
	s := tinyStore(t, dir)
	sums, err := s.List()
	if err != nil || len(sums) != 6 {
		t.Fatalf("store holds %d runs: %v", len(sums), err)
	}
	for _, sum := range sums {
		if sum.State != Done {
			t.Errorf("run %s is %s", sum.ID, sum.State)
		}
	}
	assertNoTemp(t, dir)
}

// TestGridBudget stops a grid at its budget and checks that a second call runs only the
// points the first left.
func TestGridBudget(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	trained := countTrains(s)
	g := Grid{Experiment: tinyExperiment(), Axes: []Axis{Ranks(1, 2), Seeds(1, 2)}, Store: s, Budget: time.Nanosecond}
	res, err := g.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 1 || res.Pending != 3 || res.Complete() || len(*trained) != 1 {
		t.Fatalf("budgeted grid: %d runs, %d pending, %d trained", len(res.Runs), res.Pending, len(*trained))
	}
	if st, err := g.Stored(); err != nil || len(st.Runs) != 1 || st.Pending != 3 || len(*trained) != 1 {
		t.Fatalf("Stored after the budget: %d runs, %d pending, %d trained, %v", len(st.Runs), st.Pending, len(*trained), err)
	}
	g.Budget = -1
	res, err = g.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 4 || !res.Complete() || len(*trained) != 4 {
		t.Fatalf("second call: %d runs, %d pending, %d trained in all", len(res.Runs), res.Pending, len(*trained))
	}
	for i, r := range res.Runs {
		want := map[string]string{"rank": []string{"1", "1", "2", "2"}[i], "seed": []string{"1", "2", "1", "2"}[i]}
		if r.Point["rank"] != want["rank"] || r.Point["seed"] != want["seed"] || r.Experiment.Seed != int64(i%2+1) {
			t.Errorf("point %d: %v seed %d", i, r.Point, r.Experiment.Seed)
		}
	}
}

// TestGridCarriesOnAfterAFailure plants two failures in a grid, one in training (a
// diverging learning rate) and one in configuration (a rank wider than the model): both are
// recorded with their errors, the other points finish.
func TestGridCarriesOnAfterAFailure(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	x := tinyExperiment()
	x.Methods = []peft.Method{lora.Config{Rank: 2}}
	g := Grid{Experiment: x, Store: s, Budget: -1, Axes: []Axis{
		NewAxis("case", []string{"ok", "diverges", "too wide"}, func(x *Experiment, i int) error {
			switch i {
			case 1:
				x.Methods, x.LR = []peft.Method{full.Config{}}, 1e30
			case 2:
				x.Methods = []peft.Method{adalink.Config{Rank: 4000}}
			}
			return nil
		}),
	}}
	res, err := g.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 3 || res.Runs[0].State != Done {
		t.Fatalf("grid: %d runs, first %s", len(res.Runs), res.Runs[0].State)
	}
	failed := res.Failed()
	if len(failed) != 2 || !strings.Contains(failed[0].Error, "loss") || !strings.Contains(failed[1].Error, "rank") {
		t.Errorf("failures: %+v", failed)
	}
}

// TestSweepScoresTestOnce: a learning-rate sweep scores every learning rate on validation,
// picks the best one there, and scores only that one on test.
func TestSweepScoresTestOnce(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	x := tinyExperiment()
	x.Steps, x.Methods = 20, []peft.Method{full.Config{}}
	lrs := []float64{1e-4, 3e-3, 1e30}
	best, all, err := s.Sweep(x, lrs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[2].State != Failed {
		t.Fatalf("sweep runs: %d, last %s", len(all), all[len(all)-1].State)
	}
	bestVal, bestLR := -1.0, 0.0
	for i, r := range all[:2] {
		v, ok := r.Scores[SplitValidation]
		if !ok {
			t.Fatalf("lr %g has no validation score", lrs[i])
		}
		if v > bestVal {
			bestVal, bestLR = v, lrs[i]
		}
	}
	if best.Experiment.LR != bestLR {
		t.Errorf("chose lr %g, validation says %g", best.Experiment.LR, bestLR)
	}
	if _, ok := best.Scores[SplitTest]; !ok {
		t.Error("the chosen run has no test score")
	}
	g := Grid{Experiment: x, LRs: lrs, Store: s}
	if st, err := g.Stored(); err != nil || len(st.Runs) != 1 || st.Runs[0].ID != best.ID {
		t.Errorf("Stored finds the sweep's choice: %+v, %v", st, err)
	}
	if sum, err := s.Summary(best.ID); err != nil || sum.AdapterBytes == 0 || sum.Trainable == 0 || sum.Steps != x.Steps {
		t.Errorf("the chosen run's summary after its test scoring: %+v, %v", sum, err)
	}
	for _, r := range all {
		sum, err := s.Summary(r.ID)
		if err != nil {
			continue
		}
		_, hasTest := sum.Scores[SplitTest]
		if hasTest != (r.ID == best.ID) {
			t.Errorf("lr %g: test scored = %v (chosen: %v)", r.Experiment.LR, hasTest, r.ID == best.ID)
		}
	}
}

// TestListIsFast is not timed: it checks that List reads only summaries, by planting a
// thousand runs whose records are unreadable garbage.
func TestListReadsOnlySummaries(t *testing.T) {
	dir := t.TempDir()
	s := tinyStore(t, dir)
	for i := range 1000 {
		d := filepath.Join(dir, fmt.Sprintf("run%04d", i))
		_ = os.MkdirAll(d, 0o755)
		data, _ := json.Marshal(Summary{ID: fmt.Sprintf("run%04d", i), State: Done, Method: "ADALINK", Scores: map[string]float64{SplitTest: float64(i) / 1000}})
		_ = os.WriteFile(filepath.Join(d, summaryFile), data, 0o644)
		_ = os.WriteFile(filepath.Join(d, recordFile), []byte("not json"), 0o644)
		_ = os.WriteFile(filepath.Join(d, doneFile), []byte("{}"), 0o644)
	}
	sums, err := s.List()
	if err != nil || len(sums) != 1000 {
		t.Fatalf("List: %d, %v", len(sums), err)
	}
}

// TestFastGridThinsAblations: a fast-mode grid keeps the first seed and the ends of each
// ablation axis, and every value of a Variants axis.
func TestFastGridThinsAblations(t *testing.T) {
	g := Grid{Experiment: tinyExperiment(), Axes: []Axis{
		Variants(Variant{Name: "a", Methods: []peft.Method{adalink.Config{Rank: 2}}}, Variant{Name: "b", Methods: []peft.Method{adalink.Config{Rank: 3}}}),
		Ranks(1, 2, 4), Seeds(1, 2, 3)}}
	full, err := g.points(false)
	if err != nil || len(full) != 18 {
		t.Fatalf("full grid: %d points, %v", len(full), err)
	}
	fast, err := g.points(true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range fast {
		got = append(got, pointKey(p.labels))
	}
	want := []string{"method=a rank=1 seed=1", "method=a rank=4 seed=1", "method=b rank=1 seed=1", "method=b rank=4 seed=1"}
	if !slices.Equal(got, want) {
		t.Errorf("fast points %q, want %q", got, want)
	}
	if _, err := (Grid{Experiment: tinyExperiment(), Axes: []Axis{Seeds(1), Seeds(2)}}).points(false); err == nil {
		t.Error("two axes with one name: no error")
	}
}

// TestBaselines: the majority answer is scored by hand on the test split, the untuned base
// is a stored run, and neither needs a learning rate.
func TestBaselines(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	x := tinyExperiment()
	x.LR = 0
	runs, err := s.Baselines(x)
	if err != nil {
		t.Fatal(err)
	}
	task, _ := taskstest.Lights(t)
	counts := map[string]int{}
	for _, e := range task.Test {
		counts[e.Target]++
	}
	best := 0
	for _, n := range counts {
		best = max(best, n)
	}
	if want := float64(best) / float64(len(task.Test)); runs[0].Score != want {
		t.Errorf("majority: %g, want %g", runs[0].Score, want)
	}
	if runs[1].ID == "" || runs[1].Summary().Method != "BASE" || runs[1].State != Done {
		t.Errorf("untuned: %+v", runs[1].Summary())
	}
}

// TestGridBudgetStopsInsideASweep: the budget counts each run of a learning-rate sweep, so a
// point whose sweep would overrun stops between its runs (the killed full-mode cell that a
// point-level budget allowed) and the next call continues with the runs left.
func TestGridBudgetStopsInsideASweep(t *testing.T) {
	s := tinyStore(t, t.TempDir())
	trained := countTrains(s)
	g := Grid{Experiment: tinyExperiment(), LRs: []float64{1e-3, 1e-2}, Axes: []Axis{Seeds(1)}, Store: s, Budget: time.Nanosecond}
	res, err := g.Run()
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Runs) != 0 || res.Pending != 1 || len(*trained) != 1 {
		t.Fatalf("budgeted sweep: %d runs, %d pending, %d trained (want 0, 1, 1)", len(res.Runs), res.Pending, len(*trained))
	}
	g.Budget = -1
	if res, err = g.Run(); err != nil || len(res.Runs) != 1 || len(*trained) != 2 {
		t.Fatalf("second call: %d runs, %d trained in all, %v", len(res.Runs), len(*trained), err)
	}
}
