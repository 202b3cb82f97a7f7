package bases

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/core/tensors"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
)

// maxWeightsBytes bounds a shipped checkpoint's weights, so the repository stays small.
const maxWeightsBytes = 4 << 20

func TestShippedBasesLoadAndVerify(t *testing.T) {
	fingerprint := ""
	for _, name := range Names() {
		base, err := Load(name)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		c, scope, tok, r := base.Config, base.Scope, base.Tokenizer, base.Report
		if base.Name != name || base.ID() != r.BaseHash {
			t.Fatalf("%s: loaded as %q with identity %s, report %s", name, base.Name, base.ID(), r.BaseHash)
		}
		if r.Name != name || c != r.Model || r.Params != c.Layout().NumParams() {
			t.Fatalf("%s: report %s describes %+v (%d weights), loaded %+v", name, r.Name, r.Model, r.Params, c)
		}
		hash, err := peft.BaseHash(scope)
		if err != nil || hash != r.BaseHash {
			t.Fatalf("%s: hash %s (%v), report %s", name, hash, err, r.BaseHash)
		}
		if tok.VocabSize() != c.Vocab {
			t.Fatalf("%s: %d tokens for a %d vocabulary", name, tok.VocabSize(), c.Vocab)
		}
		if fingerprint == "" {
			fingerprint = tok.Fingerprint()
		} else if tok.Fingerprint() != fingerprint {
			t.Fatalf("%s has its own vocabulary; the bases must share one", name)
		}
		data, err := shipped.ReadFile(name + "/" + model.WeightsFile)
		if err != nil || len(data) > maxWeightsBytes {
			t.Fatalf("%s: weights file of %d bytes (%v), want at most %d", name, len(data), err, maxWeightsBytes)
		}
		// The report carries the loss curve and held-out scores.
		if r.Training == nil || len(r.Training.Steps) != r.Training.Config.Steps || len(r.Training.Evals) == 0 {
			t.Fatalf("%s: report lacks the loss curve or validation evaluations", name)
		}
		if len(r.HeldOut) == 0 {
			t.Fatalf("%s: no held-out scores", name)
		}
		if c.HasImage() {
			for _, task := range r.Data.HeldOutTasks {
				s, ok := r.Score(task, "accuracy")
				if !ok || s.Seen || slices.Contains(r.Data.Tasks, task) {
					t.Fatalf("%s: held-out task %s: %+v (scored %v)", name, task, s, ok)
				}
			}
		} else if s, ok := r.Score("all", "perplexity"); !ok || !(s.Value > 1) {
			t.Fatalf("%s: held-out perplexity %+v", name, s)
		}
	}
}

func TestUnknownBase(t *testing.T) {
	_, err := Load("gpt-5")
	if err == nil || !strings.Contains(err.Error(), "vlm-instruct") {
		t.Fatalf("want an error listing the shipped bases, got %v", err)
	}
	if err := Extract("../text", t.TempDir()); err == nil {
		t.Fatal("Extract must refuse unknown names")
	}
}

// extracted returns a fresh copy of a shipped base on disk.
func extracted(t *testing.T, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := Extract(name, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadDir(dir); err != nil {
		t.Fatalf("an intact copy must load: %v", err)
	}
	return dir
}

func flipByte(t *testing.T, path string, offsetFromEnd int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-1-offsetFromEnd] ^= 0x01
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantLoadError(t *testing.T, dir string, parts ...string) {
	t.Helper()
	_, err := LoadDir(dir)
	if err == nil {
		t.Fatalf("a damaged checkpoint loaded; want an error mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

func TestDamagedCheckpointFailsClearly(t *testing.T) {
	name := VLMInstruct
	t.Run("flipped weight byte", func(t *testing.T) {
		dir := extracted(t, name)
		flipByte(t, filepath.Join(dir, model.WeightsFile), 0)
		wantLoadError(t, dir, model.WeightsFile, "damaged")
	})
	t.Run("flipped header byte", func(t *testing.T) {
		dir := extracted(t, name)
		data, _ := os.ReadFile(filepath.Join(dir, model.WeightsFile))
		flipByte(t, filepath.Join(dir, model.WeightsFile), len(data)-12)
		wantLoadError(t, dir, model.WeightsFile, "damaged")
	})
	t.Run("truncated weights", func(t *testing.T) {
		dir := extracted(t, name)
		path := filepath.Join(dir, model.WeightsFile)
		data, _ := os.ReadFile(path)
		if err := os.WriteFile(path, data[:len(data)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		wantLoadError(t, dir, model.WeightsFile)
	})
	// Someone who changes the weights and rewrites the recorded file hash still does not get
	// past the weights' identity.
	t.Run("other weights with a forged file hash", func(t *testing.T) {
		dir := extracted(t, name)
		path := filepath.Join(dir, model.WeightsFile)
		flipByte(t, path, 0)
		r, err := ReadReport(dir)
		if err != nil {
			t.Fatal(err)
		}
		if r.Files[model.WeightsFile], err = fileSHA256(path); err != nil {
			t.Fatal(err)
		}
		data, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, ReportFile), data, 0o644); err != nil {
			t.Fatal(err)
		}
		wantLoadError(t, dir, "hash", "not the shipped weights")
	})
	t.Run("edited tokenizer", func(t *testing.T) {
		dir := extracted(t, name)
		flipByte(t, filepath.Join(dir, TokenizerFile), 3)
		wantLoadError(t, dir, TokenizerFile, "damaged")
	})
	t.Run("edited config", func(t *testing.T) {
		dir := extracted(t, name)
		path := filepath.Join(dir, model.ConfigFile)
		data, _ := os.ReadFile(path)
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), `"max_len": 48`, `"max_len": 47`, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		wantLoadError(t, dir, model.ConfigFile, "damaged")
	})
	t.Run("missing report", func(t *testing.T) {
		dir := extracted(t, name)
		if err := os.Remove(filepath.Join(dir, ReportFile)); err != nil {
			t.Fatal(err)
		}
		wantLoadError(t, dir, ReportFile)
	})
	t.Run("report without identity", func(t *testing.T) {
		dir := extracted(t, name)
		if err := os.WriteFile(filepath.Join(dir, ReportFile), []byte(`{"name": "x"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		wantLoadError(t, dir, "identity")
	})
}

// Write records the identity of exactly the files it wrote: a checkpoint written from a
// loaded base verifies and has the same base hash.
func TestWriteRoundTrip(t *testing.T) {
	base, err := Load(Text)
	if err != nil {
		t.Fatal(err)
	}
	c, scope, tok, r := base.Config, base.Scope, base.Tokenizer, base.Report
	want := r.BaseHash
	r.BaseHash, r.Files = "", nil
	dir := filepath.Join(t.TempDir(), "copy")
	if err := Write(dir, c, scope, tok, r); err != nil {
		t.Fatal(err)
	}
	if r.BaseHash != want {
		t.Fatalf("rewritten base hash %s, want %s", r.BaseHash, want)
	}
	if _, err := LoadDir(dir); err != nil {
		t.Fatal(err)
	}
	c.Vocab++
	if err := Write(filepath.Join(t.TempDir(), "bad"), c, scope, tok, r); err == nil {
		t.Fatal("a tokenizer that does not fit the vocabulary must be refused")
	}
}

// Every Load has its own weights: changing one Load's weights in place (what a training step
// does to full fine-tuning's base) leaves the next Load bit-identical to the shipped
// checkpoint. And the shipped files are extracted and verified once, not on every Load.
func TestLoadsAreIndependentAndVerifiedOnce(t *testing.T) {
	first, err := Load(VLMRaw)
	if err != nil {
		t.Fatal(err)
	}
	before := verifications.Load()
	for v := range first.Scope.Store().IterVariables() {
		value, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		if err := tensors.MutableFlatData(value, func(flat []float32) {
			for i := range flat {
				flat[i] += 1
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	first.Report.BaseHash = "edited"
	if hash, _ := peft.BaseHash(first.Scope); hash == first.ID() || hash == r0(t).BaseHash {
		t.Fatal("the test did not change the first Load's weights")
	}

	second, err := Load(VLMRaw)
	if err != nil {
		t.Fatal(err)
	}
	if n := verifications.Load() - before; n != 0 {
		t.Fatalf("a second Load extracted and verified the base again (%d times)", n)
	}
	if hash, err := peft.BaseHash(second.Scope); err != nil || hash != r0(t).BaseHash || second.ID() != hash {
		t.Fatalf("second Load: weights' hash %s (%v), identity %s, shipped %s", hash, err, second.ID(), r0(t).BaseHash)
	}
	// Bit for bit against the shipped file, not only through the hash.
	_, shippedScope, err := model.Load(extracted(t, VLMRaw))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range second.Config.Layout().Params {
		got, _ := second.Scope.Store().GetVariable(p.Name).Value()
		want, _ := shippedScope.Store().GetVariable(p.Name).Value()
		if !slices.Equal(tensors.MustCopyFlatData[float32](got), tensors.MustCopyFlatData[float32](want)) {
			t.Fatalf("second Load: weight %s differs from the shipped checkpoint", p.Name)
		}
	}
}

// r0 is the shipped report of VLMRaw.
func r0(t *testing.T) *Report {
	t.Helper()
	r, err := ShippedReport(VLMRaw)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Concurrent first Loads of a base verify it once and all get the shipped weights.
func TestConcurrentLoads(t *testing.T) {
	verifiedMu.Lock()
	delete(verifiedBases, Text)
	verifiedMu.Unlock()
	before := verifications.Load()
	var wg sync.WaitGroup
	hashes := make([]string, 4)
	errs := make([]error, len(hashes))
	for i := range hashes {
		wg.Go(func() {
			var b *Base
			if b, errs[i] = Load(Text); errs[i] == nil {
				hashes[i], errs[i] = peft.BaseHash(b.Scope)
			}
		})
	}
	wg.Wait()
	r, _ := ShippedReport(Text)
	for i := range hashes {
		if errs[i] != nil || hashes[i] != r.BaseHash {
			t.Fatalf("Load %d: hash %s (%v), shipped %s", i, hashes[i], errs[i], r.BaseHash)
		}
	}
	if n := verifications.Load() - before; n != 1 {
		t.Fatalf("%d concurrent Loads verified the base %d times, want once", len(hashes), n)
	}
}
