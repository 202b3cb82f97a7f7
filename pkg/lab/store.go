package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/internal/flock"
	"github.com/peftlab/peftlab/pkg/mode"
	"github.com/peftlab/peftlab/pkg/tasks"
)

// Store keeps runs on disk, one directory per run, so that notebook cells (each its own
// program under GoNB) and kernels share them: asking for a run that is stored returns it
// without training.
//
//	runs/<id>/config.json    everything that determines the run (its identity) and its name
//	runs/<id>/status.json    state (running, interrupted, failed, done), pid, heartbeat, step
//	runs/<id>/record.json    the trainer's record: config, versions, backend, curves
//	runs/<id>/answers.json   the generated answers, by split
//	runs/<id>/adapters/<a>/  each adapter alone (peft.SaveAdapter)
//	runs/<id>/summary.json   the small file listings read: method, rank, scores, sizes, times
//	runs/<id>/done.json      written last: the run is complete
//	runs/<id>/.lock          held (flock) by the process training the run
//
// The id is a hash of the identity (see Identity), so a changed configuration is a new
// run. Every file is written to a temporary file and renamed into place, and done.json comes
// last: a run without it is incomplete whatever else it holds, and is trained again from the
// start (its directory emptied first). A process training a run holds its lock and refreshes
// the heartbeat in status.json; a run that says "running" but whose lock is free was left by
// a process that died (a killed kernel), and reads as interrupted. Two processes asking for
// one run take turns on the lock; the second finds it done.
type Store struct {
	dir string

	// LoadBase loads a base by name; nil loads peftlab's shipped bases (bases.Load).
	LoadBase func(name string) (*bases.Base, error)
	// LoadTask loads a task by name; nil loads peftlab's tasks (tasks.Load with
	// tasks.DefaultOptions, which follow fast mode).
	LoadTask func(name string) (*tasks.Task, error)
	// Fast marks the store's runs as fast-mode smoke tests (see FastSteps). OpenStore sets
	// it from the environment (mode.Fast).
	Fast bool
	// Backend computes; nil takes backend.New() (the configured default) at the first run.
	Backend compute.Backend
	// OnTrain, when set, is called before each run trains (not when it is found done): a
	// hook for tests and for progress displays.
	OnTrain func(id string)
}

// The files of a run directory.
const (
	configFile  = "config.json"
	statusFile  = "status.json"
	recordFile  = "record.json"
	answersFile = "answers.json"
	summaryFile = "summary.json"
	doneFile    = "done.json"
	lockFile    = ".lock"
	adaptersDir = "adapters"
)

// EnvRuns overrides where DefaultStore keeps runs.
const EnvRuns = "PEFTLAB_RUNS"

// heartbeatEvery is how often a training process refreshes its status.
const heartbeatEvery = 5 * time.Second

// OpenStore opens (creating it if needed) the run store in dir.
func OpenStore(dir string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("run store: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("run store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("run store: %w", err)
	}
	return &Store{dir: abs, Fast: mode.Fast()}, nil
}

// DefaultStore opens the store in $PEFTLAB_RUNS, else runs/ in the working directory (for a
// notebook under GoNB: beside the notebook).
func DefaultStore() (*Store, error) {
	if d := os.Getenv(EnvRuns); d != "" {
		return OpenStore(d)
	}
	return OpenStore("runs")
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

func (s *Store) runDir(id string) string { return filepath.Join(s.dir, id) }

// Status is what status.json holds.
type Status struct {
	State     State     `json:"state"`
	PID       int       `json:"pid,omitempty"`
	Host      string    `json:"host,omitempty"`
	Started   time.Time `json:"started,omitzero"`
	Heartbeat time.Time `json:"heartbeat,omitzero"`
	Step      int       `json:"step"`
	Steps     int       `json:"steps"`
	Error     string    `json:"error,omitempty"`
}

// State is where a run stands.
type State string

// The states of a run.
const (
	Running     State = "running"     // a live process is training it
	Interrupted State = "interrupted" // started, never finished: its process died
	Failed      State = "failed"      // training or scoring stopped on an error (kept: it repeats)
	Done        State = "done"        // complete
)

// state reads a run's state from its files: done.json decides, then status.json with the
// lock (a running status whose lock is free belongs to a dead process).
func (s *Store) state(id string) (State, Status) {
	dir := s.runDir(id)
	var st Status
	_ = readJSON(filepath.Join(dir, statusFile), &st)
	if _, err := os.Stat(filepath.Join(dir, doneFile)); err == nil {
		var sum Summary
		if readJSON(filepath.Join(dir, summaryFile), &sum) == nil && sum.State == Failed {
			return Failed, st
		}
		return Done, st
	}
	if st.State != Running {
		return Interrupted, st // never started, failed to start, or found dead before
	}
	unlock, err := flock.TryLock(filepath.Join(dir, lockFile))
	if err != nil {
		if errors.Is(err, flock.ErrBusy) {
			return Running, st
		}
		return Interrupted, st
	}
	defer unlock()
	// The process that said "running" is gone: say so on disk too, so that a person reading
	// status.json is not misled.
	st.State = Interrupted
	st.Error = fmt.Sprintf("process %d on %s stopped at step %d of %d (its last heartbeat: %s)",
		st.PID, st.Host, st.Step, st.Steps, st.Heartbeat.Format(time.RFC3339))
	_ = writeJSON(filepath.Join(dir, statusFile), st)
	return Interrupted, st
}

// List returns the summaries of the store's runs, completed and failed ones from their
// summary.json, the others (running, interrupted) from their config and status, sorted by
// id. It reads only small files.
func (s *Store) List() ([]Summary, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("run store: %w", err)
	}
	var out []Summary
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sum, err := s.Summary(e.Name())
		if err != nil {
			continue // a directory that is not a run, or one being created
		}
		out = append(out, sum)
	}
	return out, nil
}

// Summary returns one run's summary (see List).
func (s *Store) Summary(id string) (Summary, error) {
	dir := s.runDir(id)
	state, st := s.state(id)
	if state == Done || state == Failed {
		var sum Summary
		if err := readJSON(filepath.Join(dir, summaryFile), &sum); err != nil {
			return Summary{}, fmt.Errorf("run %s: %w", id, err)
		}
		sum.State = state
		return sum, nil
	}
	var c runConfig
	if err := readJSON(filepath.Join(dir, configFile), &c); err != nil {
		return Summary{}, fmt.Errorf("run %s: %w", id, err)
	}
	sum := c.summary()
	sum.ID, sum.State, sum.Error = id, state, st.Error
	sum.Step = st.Step
	return sum, nil
}

// Forget removes a run from the store (e.g. a failed run, to train it again).
func (s *Store) Forget(id string) error {
	if id == "" || strings.ContainsAny(id, `/\.`) {
		return fmt.Errorf("run store: invalid run id %q", id)
	}
	dir := s.runDir(id)
	unlock, err := flock.TryLock(filepath.Join(dir, lockFile))
	if err != nil {
		if errors.Is(err, flock.ErrBusy) {
			return fmt.Errorf("run %s is being trained by another process: forget it once that is done", id)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("run store: no run %s", id)
		}
		return err
	}
	defer unlock()
	// done.json goes first: whatever is left if this is interrupted reads as incomplete.
	_ = os.Remove(filepath.Join(dir, doneFile))
	return os.RemoveAll(dir)
}

// clear empties an incomplete run's directory, keeping its lock file (held by the caller).
func clearRun(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == lockFile {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// writeJSON writes v as indented JSON to path, atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, append(data, '\n'))
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Adapters returns the adapter directories of a completed run, by adapter name ("adalink",
// "lora"): what a server loads (peft.LoadAdapter). It is an error for a run that is not done.
func (s *Store) Adapters(id string) (map[string]string, error) {
	if st, _ := s.state(id); st != Done {
		return nil, fmt.Errorf("run %s is %s, not done: it has no adapters to load", id, st)
	}
	dir := filepath.Join(s.runDir(id), adaptersDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil // the untuned base
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out[e.Name()] = filepath.Join(dir, e.Name())
		}
	}
	return out, nil
}
