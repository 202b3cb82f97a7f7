package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

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

// The files of a run in the lab's run store that the server reads: a run DIR/<id>/ is
// complete when done.json exists; summary.json names it, its base and its task; each
// adapter is DIR/<id>/adapters/<adapter>/ in peft.SaveAdapter's layout.
const (
	runDone     = "done.json"
	runSummary  = "summary.json"
	runAdapters = "adapters"
	// runsSubdir is where a lab directory keeps its runs: -store accepts either.
	runsSubdir = "runs"
)

// runSummaryFile is the part of summary.json the server reads.
type runSummaryFile struct {
	Name string `json:"name"`
	Base string `json:"base"`
	Task string `json:"task"`
}

// ScanStore lists the adapters of the complete runs in the lab's run store dir (or in
// dir/runs, when dir is the lab directory holding it), sorted by run id. A run with one
// adapter is served under its name (summary.json's "name"); a run with several, or whose
// name another run already took, under "<id>/<adapter>". Incomplete runs (no done.json)
// are skipped; a complete run whose summary cannot be read is an error in skipped.
func ScanStore(dir string) (found []Found, skipped []error, err error) {
	root := dir
	if st, err := os.Stat(filepath.Join(dir, runsSubdir)); err == nil && st.IsDir() {
		root = filepath.Join(dir, runsSubdir)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("run store %s: %w", dir, err)
	}
	taken := map[string]bool{}
	for _, ent := range entries {
		if !ent.IsDir() {
			continue
		}
		id := ent.Name()
		run := filepath.Join(root, id)
		if _, err := os.Stat(filepath.Join(run, runDone)); err != nil {
			continue // still training, or interrupted
		}
		fs, err := readRun(run, id)
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

// StoreRun lists the adapters of one complete run of the store, named as ScanStore names
// them when the run stands alone.
func StoreRun(dir, id string) ([]Found, error) {
	if id == "" || id != filepath.Base(id) || id == "." || id == ".." {
		return nil, fmt.Errorf("run id %q is not a run directory name", id)
	}
	root := dir
	if st, err := os.Stat(filepath.Join(dir, runsSubdir)); err == nil && st.IsDir() {
		root = filepath.Join(dir, runsSubdir)
	}
	run := filepath.Join(root, id)
	if _, err := os.Stat(run); err != nil {
		return nil, fmt.Errorf("%w: run %q is not in the store %s", fs.ErrNotExist, id, dir)
	}
	if _, err := os.Stat(filepath.Join(run, runDone)); err != nil {
		return nil, fmt.Errorf("run %q of %s is not complete (no %s): it is still training or was interrupted", id, dir, runDone)
	}
	found, err := readRun(run, id)
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

func readRun(run, id string) ([]Found, error) {
	data, err := os.ReadFile(filepath.Join(run, runSummary))
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	var sum runSummaryFile
	if err := json.Unmarshal(data, &sum); err != nil {
		return nil, fmt.Errorf("run %s: %s is not valid: %w", id, runSummary, err)
	}
	ents, err := os.ReadDir(filepath.Join(run, runAdapters))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // a run without adapters (the base scored alone)
	}
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", id, err)
	}
	var out []Found
	for _, a := range ents {
		d := filepath.Join(run, runAdapters, a.Name())
		if _, err := os.Stat(filepath.Join(d, peft.ConfigFile)); !a.IsDir() || err != nil {
			continue
		}
		name := sum.Name
		if name == "" {
			name = id
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
