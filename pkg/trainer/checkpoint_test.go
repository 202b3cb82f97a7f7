package trainer

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
)

// Environment of the child process of TestCheckpointKilled.
const (
	childDirEnv  = "PEFTLAB_TEST_CHECKPOINT_DIR"
	childOnceEnv = "PEFTLAB_TEST_CHECKPOINT_ONCE"
)

// killAdapters are the adapters of the kill test: two, plus the record,
// like the run that was found loading pieces of different steps.
var killAdapters = []peft.Adapter{
	{Name: "ada", Method: adalink.Config{Rank: 2}},
	{Name: "qv", Method: lora.Config{Rank: 2}},
}

// filledBase returns a context holding tiny's base weights, all zero, made
// without building a graph so that a child process starts in milliseconds.
func filledBase(t testing.TB) *mlmodel.Scope {
	t.Helper()
	sc := mlmodel.NewStore().RootScope()
	for _, p := range tiny.Layout().Params {
		if _, err := sc.Store().CreateVariable(p.Name, tensors.FromShape(shapes.Make(dtypes.Float32, p.Shape...))); err != nil {
			t.Fatal(err)
		}
	}
	return sc
}

// setAdapterWeights sets every weight of the adapters of m to v.
func setAdapterWeights(t testing.TB, sc *mlmodel.Scope, m *peft.Model, v float32, create bool) {
	t.Helper()
	for _, a := range m.Adapters() {
		res, _ := m.Resolution(a.Name)
		for _, p := range res.New {
			n := 1
			for _, d := range p.Shape {
				n *= d
			}
			vals := make([]float32, n)
			for i := range vals {
				vals[i] = v
			}
			value := tensors.FromFlatDataAndDimensions(vals, p.Shape...)
			path := a.Scope() + "/" + p.Name
			if create {
				if _, err := sc.Store().CreateVariable(path, value); err != nil {
					t.Fatal(err)
				}
			} else if err := sc.Store().GetVariable(path).SetValue(value); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestCheckpointChild is the process TestCheckpointKilled kills: it
// checkpoints steps 1, 2, ... into its directory as fast as it can, the
// adapter weights of step s all equal to s. With childOnceEnv it writes one
// checkpoint and exits.
func TestCheckpointChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCheckpointKilled")
	}
	sc := filledBase(t)
	m := mustPeft(t, tiny, killAdapters...)
	setAdapterWeights(t, sc, m, 0, true)
	tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 1 << 30, BatchSize: 1, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	start := 1
	if prev, err := LoadRecord(filepath.Join(dir, RecordFile)); err == nil {
		start = len(prev.Steps) + 1
		tr.rec.Steps = prev.Steps
	}
	fmt.Println("ready")
	for s := start; s < start+100000; s++ {
		setAdapterWeights(t, sc, m, float32(s), false)
		tr.step = s
		tr.rec.Steps = append(tr.rec.Steps, StepPoint{Step: s})
		if err := tr.Checkpoint(dir); err != nil {
			t.Fatal(err)
		}
		if os.Getenv(childOnceEnv) != "" {
			return
		}
	}
}

// TestCheckpointKilled kills a process with SIGKILL at random moments while
// it checkpoints, a few dozen times, and checks after each kill that the
// checkpoint loads as all of one step: the record's step count and every
// weight of both adapters agree, through the stable paths and through
// CheckpointPath. The next checkpoint removes what the killed one left.
func TestCheckpointKilled(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("in the child process")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(11, 12))
	deadline := time.Now().Add(60 * time.Second)
	const rounds = 36
	kills, leftovers := 0, 0
	for i := 0; i < rounds && time.Now().Before(deadline); i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			ok := false
			for sc.Scan() {
				if sc.Text() == "ready" && !ok {
					ok = true
					ready <- true
				}
			}
			if !ok {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if !ok {
				_ = cmd.Wait()
				t.Fatal("the child process exited before checkpointing")
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("the child process did not start checkpointing within 30s")
		}
		time.Sleep(time.Duration(5+r.IntN(60)) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		kills++
		if n := countLeftovers(t, dir); n > 0 {
			leftovers++
		}
		checkOneStep(t, dir, fmt.Sprintf("after kill %d", kills))
		if t.Failed() {
			return
		}
	}
	if kills < 20 {
		t.Errorf("only %d kills before the deadline: the test checked too little", kills)
	}
	t.Logf("%d kills, %d left leftovers behind", kills, leftovers)

	// One complete checkpoint cleans up after them.
	cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childOnceEnv+"=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("final checkpoint: %v\n%s", err, out)
	}
	if n := countLeftovers(t, dir); n > 0 {
		t.Errorf("%d leftovers of killed checkpoints remain after a complete one", n)
	}
	entries, _ := os.ReadDir(dir)
	steps := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), stepPrefix) {
			steps++
		}
	}
	if steps > 2 {
		t.Errorf("%d step directories kept, want the current and the previous one", steps)
	}
	checkOneStep(t, dir, "after the final checkpoint")
}

func countLeftovers(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) || strings.Contains(e.Name(), ".tmp-") {
			n++
		}
	}
	return n
}

// checkOneStep loads the checkpoint in dir and fails unless the record and
// every adapter weight are of one step.
func checkOneStep(t *testing.T, dir, when string) {
	t.Helper()
	path, err := CheckpointPath(dir)
	if err != nil {
		if _, serr := os.Stat(filepath.Join(dir, RecordFile)); serr != nil {
			return // killed before the first checkpoint completed
		}
		t.Fatalf("%s: %v", when, err)
	}
	for _, root := range []string{dir, path} {
		rec, err := LoadRecord(filepath.Join(root, RecordFile))
		if err != nil {
			t.Errorf("%s: %v", when, err)
			continue
		}
		step := float32(len(rec.Steps))
		for _, a := range killAdapters {
			sc := filledBase(t)
			if _, err := peft.LoadAdapter(filepath.Join(root, a.Name), sc, tiny.Layout()); err != nil {
				t.Errorf("%s: adapter %s does not load: %v", when, a.Name, err)
				continue
			}
			for v := range sc.IterVariables() {
				if !strings.HasPrefix(v.Path(), "/adapters/") {
					continue
				}
				for _, x := range tensors.MustCopyFlatData[float32](v.MustValue()) {
					if x != step {
						t.Errorf("%s: %s holds weights of step %s, %s the record of step %s: the checkpoint mixes steps",
							when, v.Path(), strconv.FormatFloat(float64(x), 'g', -1, 32), RecordFile, strconv.Itoa(len(rec.Steps)))
						return
					}
				}
			}
		}
	}
}

// TestCheckpointLayout: a checkpoint replaces what a file-by-file one left
// (real directories and files at the stable paths), a second checkpoint of
// the same step gets its own step directory, and links to adapters the
// current step lacks are removed.
func TestCheckpointLayout(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "ada"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "ada", peft.ConfigFile), filepath.Join(dir, RecordFile)} {
		if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(currentLink, "gone"), filepath.Join(dir, "gone")); err != nil {
		t.Fatal(err)
	}
	sc := filledBase(t)
	m := mustPeft(t, tiny, killAdapters...)
	setAdapterWeights(t, sc, m, 3, true)
	tr, err := New(testBackend(t), sc, tiny, m, Config{Steps: 10, BatchSize: 1, LR: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	tr.step = 3
	tr.rec.Steps = []StepPoint{{Step: 0}, {Step: 1}, {Step: 2}}
	for range 2 {
		if err := tr.Checkpoint(dir); err != nil {
			t.Fatal(err)
		}
	}
	path, err := CheckpointPath(dir)
	if err != nil || filepath.Base(path) != stepPrefix+"000003.1" {
		t.Errorf("CheckpointPath = %q, %v; want the second checkpoint of step 3", path, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "gone")); err == nil {
		t.Error("the link to an adapter the checkpoint does not have was kept")
	}
	if n := countLeftovers(t, dir); n > 0 {
		t.Errorf("%d leftovers", n)
	}
	checkOneStep(t, dir, "after two checkpoints of step 3")
	for _, name := range []string{"ada", "qv", RecordFile} {
		if target, err := os.Readlink(filepath.Join(dir, name)); err != nil || target != filepath.Join(currentLink, name) {
			t.Errorf("%s: link to %q, %v", name, target, err)
		}
	}
}
