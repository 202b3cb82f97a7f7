package bases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"

	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// ReportFile is the report written beside each checkpoint.
const ReportFile = "report.json"

// TokenizerFile is the shared vocabulary, copied into every checkpoint directory so a base
// is complete on its own.
const TokenizerFile = "tokenizer.json"

// Report is report.json: how a base was made, its identity and its held-out scores.
//
// It is the anchor of a checkpoint's identity: LoadDir refuses files whose SHA-256 differs
// from Files, weights whose BaseHash differs from BaseHash, and a tokenizer whose fingerprint
// differs from TokenizerFingerprint.
type Report struct {
	Name  string `json:"name"`
	About string `json:"about"`
	// Command remakes the checkpoint.
	Command string       `json:"command"`
	Model   model.Config `json:"model"`
	// Params is the number of weights (scalars) of the base.
	Params int `json:"params"`
	// BaseHash is peft.BaseHash of the weights: what adapter files record.
	BaseHash             string `json:"base_hash"`
	TokenizerFingerprint string `json:"tokenizer_fingerprint"`
	// Files maps each checkpoint file to its hex SHA-256.
	Files map[string]string `json:"files_sha256"`

	Data Data `json:"data"`
	// HeldOut are the scores on data never trained on (test splits), measured on the saved
	// checkpoint after pretraining.
	HeldOut []Score `json:"held_out"`
	// Samples are a few generations on held-out inputs, for reading.
	Samples []Sample `json:"samples,omitempty"`

	// TrainMinutes is the wall-clock time of the training steps and evaluations;
	// MedianStepSeconds the median time of one optimizer step.
	TrainMinutes      float64 `json:"train_minutes"`
	MedianStepSeconds float64 `json:"median_step_seconds"`
	// Machine describes where it ran (CPUs, backend).
	Machine string `json:"machine"`
	// Training is the trainer's record: its configuration, the loss of every step (the loss
	// curve) and the validation evaluations.
	Training *trainer.Record `json:"training"`
}

// Data says what a base was pretrained on.
type Data struct {
	// Corpus describes the training data in a sentence.
	Corpus string `json:"corpus"`
	// Tasks are the pkg/tasks tasks whose training splits were used (multimodal bases).
	Tasks []string `json:"tasks,omitempty"`
	// HeldOutTasks are tasks kept entirely out of pretraining, to measure adaptation to
	// tasks the base has not seen.
	HeldOutTasks []string `json:"held_out_tasks,omitempty"`
	// Documents counts the training documents per source (text base).
	Documents map[string]int `json:"documents,omitempty"`
	// Examples is the number of training sequences available; SeqLen their length in tokens.
	Examples int `json:"examples"`
	SeqLen   int `json:"seq_len"`
	// Tokens is the number of training tokens available (text base).
	Tokens int `json:"tokens,omitempty"`
	// SeenTokens / SeenExamples are what the optimizer actually consumed: steps × batch.
	SeenExamples int `json:"seen_examples"`
}

// Score is one held-out measurement.
type Score struct {
	Task   string  `json:"task"`
	Split  string  `json:"split"`
	Metric string  `json:"metric"` // "perplexity", "accuracy", "cider-d" or "bleu-4"
	Value  float64 `json:"value"`
	N      int     `json:"n"` // examples (or documents) scored
	// Seen is true when the task's training split was part of pretraining; false for
	// held-out tasks (zero-shot).
	Seen bool `json:"seen"`
}

// Sample is one generation of the base on a held-out input.
type Sample struct {
	Task   string `json:"task"`
	Prompt string `json:"prompt"`
	Target string `json:"target,omitempty"`
	Output string `json:"output"`
}

// ReadReport reads dir/report.json.
func ReadReport(dir string) (*Report, error) {
	data, err := os.ReadFile(dir + string(os.PathSeparator) + ReportFile)
	if err != nil {
		return nil, fmt.Errorf("base checkpoint %s: %w", dir, err)
	}
	return parseReport(data, dir)
}

func parseReport(data []byte, where string) (*Report, error) {
	var r Report
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("base checkpoint %s: %s is not a valid report: %w", where, ReportFile, err)
	}
	if r.BaseHash == "" || len(r.Files) == 0 || r.TokenizerFingerprint == "" {
		return nil, fmt.Errorf("base checkpoint %s: %s records no identity (base_hash, files_sha256, tokenizer_fingerprint)", where, ReportFile)
	}
	return &r, nil
}

// Score returns the held-out score of task with the given metric.
func (r *Report) Score(task, metric string) (Score, bool) {
	for _, s := range r.HeldOut {
		if s.Task == task && s.Metric == metric {
			return s, true
		}
	}
	return Score{}, false
}
