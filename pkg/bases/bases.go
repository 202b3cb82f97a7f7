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
//	c, ctx, tok, err := bases.Load("vlm-instruct")
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

// Load loads a shipped base: its model configuration, a context holding its weights
// (trainable by default: attach adapters with peft.New and let ApplyTrainable freeze it) and
// its tokenizer, after verifying every file and the weights' identity (see LoadDir).
func Load(name string) (model.Config, *mlmodel.Scope, *tokenizer.Tokenizer, error) {
	r, err := ShippedReport(name)
	if err != nil {
		return model.Config{}, nil, nil, err
	}
	// model.Load and tokenizer.Load read files: give them a private copy.
	dir, err := os.MkdirTemp("", "peftlab-base-*")
	if err != nil {
		return model.Config{}, nil, nil, fmt.Errorf("load base %s: %w", name, err)
	}
	defer os.RemoveAll(dir)
	if err := Extract(name, dir); err != nil {
		return model.Config{}, nil, nil, err
	}
	return loadVerified(dir, r, name)
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
