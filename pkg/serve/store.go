package serve

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/peftlab/peftlab/pkg/lab"
	"github.com/peftlab/peftlab/pkg/peft"
)

// Found is an adapter directory found on disk, with the name it is served under.
type Found struct {
	Name string `json:"name"`
	Dir  string `json:"dir"`
	// Run, Base and Task come from the run's summary.json (store adapters only).
	Run  string `json:"run,omitempty"`
	Base string `json:"base,omitempty"`
	Task string `json:"task,omitempty"`
}

// runsSubdir is where a lab directory keeps its runs: -store accepts either.
const runsSubdir = "runs"

// openStore opens the lab's run store in dir (or in dir/runs, when dir is the lab directory
// holding it). It never creates one: a mistyped -store is an error, not an empty store.
func openStore(dir string) (*lab.Store, error) {
	root := dir
	if st, err := os.Stat(filepath.Join(dir, runsSubdir)); err == nil && st.IsDir() {
		root = filepath.Join(dir, runsSubdir)
	}
	if st, err := os.Stat(root); err != nil {
		return nil, fmt.Errorf("run store %s: %w", dir, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("run store %s is not a directory", dir)
	}
	return lab.OpenStore(root)
}

// ScanStore lists the adapters of the completed runs in the lab's run store dir (or in
// dir/runs), sorted by run id, reading the store through package lab. A run with one
// adapter is served under its name (its summary's "name"); a run with several, or whose
// name another run already took, under "<id>/<adapter>". Runs still training, interrupted
// or failed are skipped; a completed run whose summary cannot be read is an error in skipped.
func ScanStore(dir string) (found []Found, skipped []error, err error) {
	st, err := openStore(dir)
	if err != nil {
		return nil, nil, err
	}
	entries, err := os.ReadDir(st.Dir())
	if err != nil {
		return nil, nil, fmt.Errorf("run store %s: %w", dir, err)
	}
	taken := map[string]bool{}
	for _, ent := range entries {
		if !ent.IsDir() || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		id := ent.Name()
		if _, err := os.Stat(filepath.Join(st.Dir(), id, "done.json")); err != nil {
			continue // still training, or interrupted: not a run yet
		}
		fs, err := readRun(st, id)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		for _, f := range fs {
			if len(fs) > 1 || taken[f.Name] {
				f.Name = id + "/" + filepath.Base(f.Dir)
			}
			taken[f.Name] = true
			found = append(found, f)
		}
	}
	return found, skipped, nil
}

// StoreRun lists the adapters of one completed run of the store, named as ScanStore names
// them when the run stands alone.
func StoreRun(dir, id string) ([]Found, error) {
	if id == "" || id != filepath.Base(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("run id %q is not a run directory name", id)
	}
	st, err := openStore(dir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(st.Dir(), id)); err != nil {
		return nil, fmt.Errorf("%w: run %q is not in the store %s", fs.ErrNotExist, id, dir)
	}
	if sum, err := st.Summary(id); err != nil || (sum.State != lab.Done && sum.State != lab.Failed) {
		return nil, fmt.Errorf("run %q of %s is not complete: it is still training or was interrupted", id, dir)
	}
	found, err := readRun(st, id)
	if err != nil {
		return nil, err
	}
	if len(found) > 1 {
		for i := range found {
			found[i].Name = id + "/" + filepath.Base(found[i].Dir)
		}
	}
	return found, nil
}

// readRun lists a completed run's adapters with its summary's name, base and task.
func readRun(st *lab.Store, id string) ([]Found, error) {
	sum, err := st.Summary(id)
	if err != nil {
		return nil, err
	}
	if sum.State != lab.Done {
		return nil, fmt.Errorf("run %q of %s is %s, not done: it has no adapters to serve", id, st.Dir(), sum.State)
	}
	dirs, err := st.Adapters(id)
	if err != nil {
		return nil, err
	}
	name := sum.Name
	if name == "" {
		name = id
	}
	var out []Found
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, peft.ConfigFile)); err != nil {
			continue
		}
		out = append(out, Found{Name: name, Dir: d, Run: id, Base: sum.Base, Task: sum.Task})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, nil
}

// ScanDir lists adapter directories: dir itself when it holds adapter_config.json (served
// under the base name of dir), otherwise each subdirectory that does, at any depth, served
// under its path relative to dir ("spam-adalink", "vlm/footwear"), sorted.
func ScanDir(dir string) ([]Found, error) {
	if _, err := os.Stat(filepath.Join(dir, peft.ConfigFile)); err == nil {
		abs, _ := filepath.Abs(dir)
		return []Found{{Name: filepath.Base(abs), Dir: dir}}, nil
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	var out []Found
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() || path == dir {
			return nil
		}
		if _, err := os.Stat(filepath.Join(path, peft.ConfigFile)); err == nil {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, Found{Name: filepath.ToSlash(rel), Dir: path})
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s for adapters: %w", dir, err)
	}
	return out, nil
}

// LoadFound loads the adapters found by ScanStore or ScanDir. Those of another base (by the
// run's summary, or refused by peft.LoadAdapter) and those that fail to load are skipped,
// each with its error, so one stale adapter does not keep a directory of good ones from
// serving.
func (e *Engine) LoadFound(found []Found) (loaded []Info, skipped []error) {
	for _, f := range found {
		if f.Base != "" && f.Base != e.name {
			skipped = append(skipped, fmt.Errorf("adapter %q (%s): run %s was trained on base %q, this server serves %q",
				f.Name, f.Dir, f.Run, f.Base, e.name))
			continue
		}
		info, err := e.Load(f.Name, f.Dir)
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		loaded = append(loaded, info)
	}
	return loaded, skipped
}
