package bases

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"

	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// Files are the files of a base checkpoint whose SHA-256 the report records; report.json
// itself is the record.
var Files = []string{model.ConfigFile, model.WeightsFile, TokenizerFile}

// Write saves a base checkpoint into dir: the model (config.json, model.safetensors,
// model.Save), the tokenizer (tokenizer.json) and r as report.json, after filling in r's
// identity (Model, Params, BaseHash, TokenizerFingerprint, Files). The identity is taken from
// the files as written, re-read from disk, so it describes exactly what LoadDir will load.
// The report is written last: a directory whose report.json verifies is complete.
func Write(dir string, c model.Config, scope *mlmodel.Scope, tok *tokenizer.Tokenizer, r *Report) error {
	if tok.VocabSize() != c.Vocab {
		return fmt.Errorf("write base %s: the tokenizer has %d tokens but the model's vocabulary is %d", c.ModelName(), tok.VocabSize(), c.Vocab)
	}
	if err := model.Save(dir, c, scope); err != nil {
		return fmt.Errorf("write base: %w", err)
	}
	if err := tok.Save(filepath.Join(dir, TokenizerFile)); err != nil {
		return fmt.Errorf("write base %s: %w", c.ModelName(), err)
	}
	return WriteReport(dir, r)
}

// WriteReport fills in r's identity from the checkpoint files in dir (see Write) and writes
// r as dir/report.json, atomically.
func WriteReport(dir string, r *Report) error {
	c, scope, err := model.Load(dir)
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	hash, err := peft.BaseHash(scope)
	if err != nil {
		return fmt.Errorf("write report %s: %w", dir, err)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, TokenizerFile))
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	r.Model, r.Params, r.BaseHash, r.TokenizerFingerprint = c, c.Layout().NumParams(), hash, tok.Fingerprint()
	r.Files = map[string]string{}
	for _, f := range Files {
		sum, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return fmt.Errorf("write report: %w", err)
		}
		r.Files[f] = sum
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("write report %s: %w", dir, err)
	}
	return atomicfile.WriteBytes(filepath.Join(dir, ReportFile), append(data, '\n'))
}

// LoadDir loads the base checkpoint in dir and verifies it against its report.json:
//
//   - every file's SHA-256 equals the recorded one (a damaged or edited file is named);
//   - config.json describes the recorded model, and the weights load (model.Load's checks);
//   - peft.BaseHash of the loaded weights equals the recorded base_hash, the identity adapter
//     files are checked against;
//   - the tokenizer's fingerprint equals the recorded one and its size the model's vocabulary.
//
// The returned Scope holds exactly the base weights. Unlike Load, LoadDir reads and verifies
// the files on every call: files on disk can change between two calls.
func LoadDir(dir string) (*Base, error) {
	r, err := ReadReport(dir)
	if err != nil {
		return nil, err
	}
	return loadVerified(dir, r, dir)
}

// loadVerified loads the checkpoint in dir against the report r; name is how errors call it.
func loadVerified(dir string, r *Report, name string) (*Base, error) {
	fail := func(format string, args ...any) (*Base, error) {
		return nil, fmt.Errorf("base %s: "+format, append([]any{name}, args...)...)
	}
	for _, f := range Files {
		want, ok := r.Files[f]
		if !ok {
			return fail("%s records no SHA-256 for %s", ReportFile, f)
		}
		got, err := fileSHA256(filepath.Join(dir, f))
		if err != nil {
			return fail("%v", err)
		}
		if got != want {
			return fail("%s is damaged or was changed: its SHA-256 is %s, but the checkpoint was saved with %s (%s). Restore it (git checkout) or remake the base with %q",
				f, short(got), short(want), ReportFile, r.Command)
		}
	}
	c, scope, err := model.Load(dir)
	if err != nil {
		return fail("%v", err)
	}
	if !reflect.DeepEqual(c, r.Model) {
		return fail("config.json describes %+v, but %s records %+v", c, ReportFile, r.Model)
	}
	hash, err := peft.BaseHash(scope)
	if err != nil {
		return fail("%v", err)
	}
	if hash != r.BaseHash {
		return fail("the weights' hash is %s, but the base was pretrained as %s: these are not the shipped weights", hash, r.BaseHash)
	}
	tok, err := tokenizer.Load(filepath.Join(dir, TokenizerFile))
	if err != nil {
		return fail("%v", err)
	}
	if tok.Fingerprint() != r.TokenizerFingerprint {
		return fail("the tokenizer's fingerprint is %s, but the base was pretrained with %s", short(tok.Fingerprint()), short(r.TokenizerFingerprint))
	}
	if tok.VocabSize() != c.Vocab {
		return fail("the tokenizer has %d tokens but the model's vocabulary is %d", tok.VocabSize(), c.Vocab)
	}
	return &Base{Name: r.Name, Config: c, Scope: scope, Tokenizer: tok, Report: r}, nil
}

func fileSHA256(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// short abbreviates a hex digest for messages.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
