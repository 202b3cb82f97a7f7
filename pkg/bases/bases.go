// Package bases ships peftlab's pretrained base models and loads them with their identity
// verified.
//
// No pretrained transformer can be downloaded here, so peftlab pretrains its own small bases
// on real data (cmd/pretrain, recipes in pkg/pretrain) and commits the finished checkpoints
// in this package's directory, embedded in the binary:
//
//	text          causal LM on IMDB reviews, SpamAssassin mails and fortune quotes
//	vlm-raw       vision-language base pretrained on captioning alone (the paper's raw regime)
//	vlm-instruct  the same architecture pretrained on instructed VQA and captioning, with some
//	              tasks held out (the instruction-tuned regime)
//
// All three share one 2,048-token vocabulary. Each checkpoint is a directory
// <name>/{config.json, model.safetensors, tokenizer.json, report.json}; report.json records how
// the base was made, its held-out scores, its loss curve and its identity: the SHA-256 of each
// file and peft.BaseHash of the weights, which adapter files also record.
//
//	base, err := bases.Load("vlm-instruct") // base.Config, base.Scope, base.Tokenizer, base.Report
//
// Load refuses a damaged checkpoint with a message naming the file; LoadDir does the same for
// a checkpoint directory on disk (a freshly pretrained one, or a copy).
package bases

import (
	"embed"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// Names of the shipped bases.
const (
	Text        = "text"
	VLMRaw      = "vlm-raw"
	VLMInstruct = "vlm-instruct"
)

// Names lists the shipped bases.
func Names() []string { return []string{Text, VLMRaw, VLMInstruct} }

// The checkpoints, committed beside this file. The files are named one by one so that
// nothing else in the directories (report.html, the temporary directory of a pretraining run
// in progress) gets into the binary.
//
//go:embed text/config.json text/model.safetensors text/tokenizer.json text/report.json
//go:embed vlm-raw/config.json vlm-raw/model.safetensors vlm-raw/tokenizer.json vlm-raw/report.json
//go:embed vlm-instruct/config.json vlm-instruct/model.safetensors vlm-instruct/tokenizer.json vlm-instruct/report.json
var shipped embed.FS

func checkName(name string) error {
	if !slices.Contains(Names(), name) {
		return fmt.Errorf("unknown base %q (shipped: %s)", name, strings.Join(Names(), ", "))
	}
	return nil
}

// ShippedReport returns the report of a shipped base: how it was made and its held-out
// scores.
func ShippedReport(name string) (*Report, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	data, err := shipped.ReadFile(path.Join(name, ReportFile))
	if err != nil {
		return nil, fmt.Errorf("base %s is not shipped in this build: %w", name, err)
	}
	return parseReport(data, name)
}

// Base is a loaded shipped (or on-disk) base: its config, tokenizer, report and a private
// copy of its weights.
type Base struct {
	// Name is the base's name as its report records it ("text", "vlm-instruct").
	Name   string
	Config model.Config
	// Scope holds the base weights, trainable by default: attach adapters with peft.New and
	// let ApplyTrainable freeze them. Every Load gives a fresh copy, so fine-tuning one
	// Base's weights never changes another's.
	Scope *mlmodel.Scope
	// Tokenizer is shared by every Load of the same base: it is never changed after loading.
	Tokenizer *tokenizer.Tokenizer
	// Report is how the base was made and its held-out scores; each Load has its own copy.
	Report *Report
}

// ID returns the weights' identity, Report.BaseHash: what adapter files record and are
// checked against.
func (b *Base) ID() string { return b.Report.BaseHash }

// Load loads a shipped base after verifying every file and the weights' identity (see
// LoadDir).
//
// The verification runs once per process and base: later Loads of the same base reuse the
// verified config, tokenizer and weights, and only copy the weights into a new Scope (a few
// megabytes), so a notebook or a grid can call Load for every run. Load is safe for
// concurrent use.
func Load(name string) (*Base, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	v, err := verified(name)
	if err != nil {
		return nil, err
	}
	r, err := ShippedReport(name)
	if err != nil {
		return nil, err
	}
	scope, err := v.scope()
	if err != nil {
		return nil, fmt.Errorf("load base %s: %w", name, err)
	}
	return &Base{Name: name, Config: v.config, Scope: scope, Tokenizer: v.tok, Report: r}, nil
}

// A verifiedBase is what Load keeps of a shipped base after verifying it: the weights as
// plain values, never handed out, so no Scope, backend or training step can change them.
type verifiedBase struct {
	config  model.Config
	tok     *tokenizer.Tokenizer
	weights []weight
}

type weight struct {
	name string
	dims []int
	flat []float32
}

// scope returns a new Scope holding a copy of the weights.
func (v *verifiedBase) scope() (*mlmodel.Scope, error) {
	sc := mlmodel.NewStore().RootScope()
	for _, w := range v.weights {
		if _, err := sc.Store().CreateVariable(w.name, tensors.FromFlatDataAndDimensions(w.flat, w.dims...)); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

var (
	// verifiedMu guards verifiedBases. It is held while a base is extracted and verified, so
	// concurrent first Loads verify once; errors are not kept, so a failure (a full disk)
	// is retried by the next Load.
	verifiedMu    sync.Mutex
	verifiedBases = map[string]*verifiedBase{}
	// verifications counts the extractions and verifications of shipped bases, for tests.
	verifications atomic.Int64
)

// verified returns the verified shipped base name, extracting and verifying it on first use.
func verified(name string) (*verifiedBase, error) {
	verifiedMu.Lock()
	defer verifiedMu.Unlock()
	if v, ok := verifiedBases[name]; ok {
		return v, nil
	}
	verifications.Add(1)
	r, err := ShippedReport(name)
	if err != nil {
		return nil, err
	}
	// model.Load and tokenizer.Load read files: give them a private copy.
	dir, err := os.MkdirTemp("", "peftlab-base-*")
	if err != nil {
		return nil, fmt.Errorf("load base %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	if err := Extract(name, dir); err != nil {
		return nil, err
	}
	b, err := loadVerified(dir, r, name)
	if err != nil {
		return nil, err
	}
	v := &verifiedBase{config: b.Config, tok: b.Tokenizer}
	for _, p := range b.Config.Layout().Params {
		t, err := b.Scope.Store().GetVariable(p.Name).Value()
		if err != nil {
			return nil, fmt.Errorf("load base %s: weight %s: %w", name, p.Name, err)
		}
		flat, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return nil, fmt.Errorf("load base %s: weight %s: %w", name, p.Name, err)
		}
		v.weights = append(v.weights, weight{name: p.Name, dims: slices.Clone(p.Shape), flat: flat})
	}
	verifiedBases[name] = v
	return v, nil
}

// Extract writes the files of a shipped base into dir (created if needed), e.g. to inspect
// them or to load them with other tools. The files are written as shipped; LoadDir(dir)
// verifies them.
func Extract(name string, dir string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("extract base %s: %w", name, err)
	}
	for _, f := range append(slices.Clone(Files), ReportFile) {
		data, err := shipped.ReadFile(path.Join(name, f))
		if err != nil {
			return fmt.Errorf("base %s is not shipped in this build: %w", name, err)
		}
		if err := atomicfile.WriteBytes(filepath.Join(dir, f), data); err != nil {
			return fmt.Errorf("extract base %s: %w", name, err)
		}
	}
	return nil
}
