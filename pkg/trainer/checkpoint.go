package trainer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/peft"
)

// RecordFile is the name of the run record Checkpoint writes.
const RecordFile = "run.json"

// A checkpoint directory holds one hidden directory per saved step, a
// pointer to the current one, and stable links through that pointer:
//
//	dir/.step-000038/ada/        adapter_config.json, adapter_model.safetensors
//	dir/.step-000038/run.json
//	dir/.current -> .step-000038 (replaced atomically by each checkpoint)
//	dir/ada      -> .current/ada
//	dir/run.json -> .current/run.json
//
// Writing every file of a step, then switching one pointer, is what makes a
// checkpoint one unit: files replaced one by one (as before) could be killed
// half way, leaving an adapter of step 38 next to another adapter and the
// record of step 37. Names starting with '.' cannot be adapter names (see
// peft.CheckName), so the hidden entries never collide with an adapter.
const (
	currentLink = ".current"
	stepPrefix  = ".step-"
	// tmpPrefix marks what a checkpoint writes before it is complete; a
	// process killed during a checkpoint leaves such entries, and the next
	// checkpoint into the directory removes them.
	tmpPrefix = ".tmp-"
)

// Checkpoint saves, under dir, every adapter that trains, each alone
// (peft.SaveAdapter: adapter_config.json and adapter_model.safetensors,
// never the frozen base), and the run's record so far (RecordFile), as one
// unit: they are written into a new step directory, which then becomes the
// current one with a single atomic rename. Whenever the process dies, dir
// holds all of one step or all of the previous one, never a mix, and the
// previous step stays intact until the new one is complete. The paths
// dir/<adapter> and dir/run.json always lead to the current step; readers
// that must not see a later checkpoint land between two reads (a run still
// training into dir) open CheckpointPath(dir) once and read from there.
//
// Leftovers of an interrupted checkpoint are removed, and only the current
// and the previous step are kept. Without a peft.Model (every weight
// trains) there is no adapter to save: it is an error.
func (t *Trainer) Checkpoint(dir string) (err error) {
	fail := func(err error) error { return fmt.Errorf("checkpoint to %s: %w", dir, err) }
	if t.peft == nil {
		return errors.New("checkpoint: training without adapters (nil peft.Model) has no adapter to save; save the context with GoMLX's checkpoints package")
	}
	var names []string
	for _, a := range t.peft.Adapters() {
		if a.Frozen {
			continue
		}
		if err := peft.CheckName(a.Name); err != nil {
			return fail(err)
		}
		if a.Name == RecordFile {
			return fail(fmt.Errorf("adapter name %q cannot be a directory name next to %s", a.Name, RecordFile))
		}
		names = append(names, a.Name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	if err := removeLeftovers(dir); err != nil {
		return fail(err)
	}

	tmp, err := os.MkdirTemp(dir, tmpPrefix+"step-")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, name := range names {
		if err := peft.SaveAdapter(filepath.Join(tmp, name), t.scope, t.peft, name); err != nil {
			return fail(err)
		}
	}
	if err := t.rec.Save(filepath.Join(tmp, RecordFile)); err != nil {
		return fail(err)
	}
	syncDir(tmp)

	step, err := newStepName(dir, t.step)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, step)); err != nil {
		return fail(err)
	}
	syncDir(dir)
	previous, _ := os.Readlink(filepath.Join(dir, currentLink))
	// The switch: from here on, dir is this step.
	if err := replaceLink(dir, currentLink, step); err != nil {
		_ = os.RemoveAll(filepath.Join(dir, step))
		return fail(err)
	}
	if err := linkEntries(dir, append(names, RecordFile)); err != nil {
		return fail(err)
	}
	return pruneSteps(dir, step, previous)
}

// CheckpointPath returns the directory of the current (last complete)
// checkpoint under dir, with every adapter in its own subdirectory and
// RecordFile: read a checkpoint from there to read all of one step, even
// while training goes on into dir.
func CheckpointPath(dir string) (string, error) {
	target, err := os.Readlink(filepath.Join(dir, currentLink))
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, RecordFile)); serr == nil {
			return dir, nil // written by a peftlab that wrote checkpoints file by file
		}
		return "", fmt.Errorf("%s holds no checkpoint (Trainer.Checkpoint writes one; set Trainer.CheckpointDir to write them during Run)", dir)
	}
	if err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", dir, err)
	}
	if !strings.HasPrefix(target, stepPrefix) || strings.ContainsRune(target, filepath.Separator) {
		return "", fmt.Errorf("checkpoint %s: %s points to %q, which is not a step directory of this checkpoint", dir, currentLink, target)
	}
	return filepath.Join(dir, target), nil
}

// removeLeftovers removes what interrupted checkpoints left in dir.
func removeLeftovers(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("remove the leftover of an interrupted checkpoint: %w", err)
			}
		}
	}
	return nil
}

// newStepName returns a step directory name for step that is not taken
// (a checkpoint taken twice at one step, or a step written by a process
// killed before switching to it, gets a suffix).
func newStepName(dir string, step int) (string, error) {
	base := fmt.Sprintf("%s%06d", stepPrefix, step)
	for i := 0; i < 1000; i++ {
		name := base
		if i > 0 {
			name = fmt.Sprintf("%s.%d", base, i)
		}
		if _, err := os.Lstat(filepath.Join(dir, name)); errors.Is(err, fs.ErrNotExist) {
			return name, nil
		}
	}
	return "", fmt.Errorf("too many checkpoints of step %d in %s", step, dir)
}

// replaceLink makes dir/name a symbolic link to target, atomically: a new
// link is renamed over the old one, so dir/name is always one or the other.
func replaceLink(dir, name, target string) error {
	tmp := filepath.Join(dir, fmt.Sprintf("%slink-%s-%d", tmpPrefix, name, os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(dir)
	return nil
}

// linkEntries makes dir/<name> a link through the current step for each
// name, replaces what a file-by-file checkpoint left there, and removes
// links to entries the current step does not have (an adapter of an
// earlier run into dir).
func linkEntries(dir string, names []string) error {
	for _, name := range names {
		path := filepath.Join(dir, name)
		target := filepath.Join(currentLink, name)
		fi, err := os.Lstat(path)
		switch {
		case err == nil && fi.Mode()&fs.ModeSymlink != 0:
			if got, _ := os.Readlink(path); got == target {
				continue
			}
		case err == nil:
			// A real file or directory: move it aside (as a leftover, should
			// this be killed), since a link cannot be renamed over a directory.
			aside := filepath.Join(dir, tmpPrefix+"old-"+name)
			_ = os.RemoveAll(aside)
			if err := os.Rename(path, aside); err != nil {
				return err
			}
			defer os.RemoveAll(aside)
		case !errors.Is(err, fs.ErrNotExist):
			return err
		}
		if err := replaceLink(dir, name, target); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink == 0 || slices.Contains(names, e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if target, _ := os.Readlink(path); strings.HasPrefix(target, currentLink+string(filepath.Separator)) {
			_ = os.Remove(path)
		}
	}
	return nil
}

// pruneSteps removes every step directory but current and previous: the
// previous one stays for a reader that opened it just before the switch.
func pruneSteps(dir, current, previous string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, stepPrefix) && n != current && n != previous {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("checkpoint: remove the old step %s: %w", n, err)
			}
		}
	}
	return nil
}

// syncDir makes renames in dir durable; where a directory cannot be
// synced the rename has happened anyway, so failures are ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
