// Package tasks turns the data sets of pkg/dataset into tasks for fine-tuning and
// pretraining: each has fixed seeded train/validation/test splits, a metric, a fast subset for
// CI, batches in pkg/trainer's shapes and an HTML preview for notebooks.
//
// Text classification: imdb (sentiment), spam (ham or spam), fortune-topic (quote topic).
// Visual question answering: mnist-digit, mnist-parity, mnist-large, fashion-item,
// fashion-footwear, emoji-category. Captioning: emoji-caption, fashion-caption, mnist-caption.
//
// Every example carries a natural-language prompt and a text answer (Target), so any task can
// be trained as generation (prompt [SEP] answer); classification tasks also carry a class
// Label. The splits depend only on the data and a seed fixed per data source, so tasks over
// the same images share splits: no image of one task's test split is in another's training
// split.
package tasks

import (
	"fmt"
	"slices"
	"strings"

	"github.com/peftlab/peftlab/pkg/metrics"
	"github.com/peftlab/peftlab/pkg/mode"
)

// Kind says what a task's answers are.
type Kind string

const (
	// Classification tasks answer with one of Classes; Example.Label is its index.
	Classification Kind = "classification"
	// Captioning tasks answer with free text, scored against Example.References.
	Captioning Kind = "captioning"
)

// Metric names.
const (
	MetricAccuracy = "accuracy"
	MetricCIDErD   = "cider-d"
)

// Example is one input with its answer.
type Example struct {
	// Prompt is the text input: the instruction or question, then any content (a review, a mail).
	Prompt string
	// Target is the expected answer: the class name, or the first reference caption.
	Target string
	// References are the acceptable answers for captioning metrics (Target first).
	References []string
	// Label is the class index into Task.Classes, or -1 for captioning.
	Label int

	img *imageRef // nil for text-only examples
}

// HasImage reports whether the example has an image.
func (e Example) HasImage() bool { return e.img != nil }

// Image renders the example's image as ImageSize x ImageSize x Channels float32 values in
// [0, 1], row-major (nil for text-only examples).
func (e Example) Image() ([]float32, error) {
	if e.img == nil {
		return nil, nil
	}
	return e.img.render()
}

// Task is a data set turned into a supervised problem.
type Task struct {
	Name        string
	Description string
	Kind        Kind
	Classes     []string // class names (the answers) for Classification; nil for Captioning
	Metric      string   // MetricAccuracy or MetricCIDErD
	// ImageSize and Channels describe the images (0 for text tasks).
	ImageSize, Channels int

	Train, Validation, Test []Example
}

// Multimodal reports whether the task's examples have images.
func (t *Task) Multimodal() bool { return t.ImageSize > 0 }

// Split returns the named split: "train", "validation" or "test".
func (t *Task) Split(name string) ([]Example, error) {
	switch name {
	case "train":
		return t.Train, nil
	case "validation", "val":
		return t.Validation, nil
	case "test":
		return t.Test, nil
	}
	return nil, fmt.Errorf("task %s has splits train, validation and test, not %q", t.Name, name)
}

// Score computes the task's metric for generated answers to examples: exact match of the
// answer words (accuracy) for classification, CIDEr-D against the references for captioning.
func (t *Task) Score(examples []Example, predictions []string) (float64, error) {
	if len(examples) != len(predictions) {
		return 0, fmt.Errorf("score %s: %d examples but %d predictions", t.Name, len(examples), len(predictions))
	}
	if t.Kind == Classification {
		targets := make([]string, len(examples))
		for i, e := range examples {
			targets[i] = e.Target
		}
		return metrics.ExactMatch(predictions, targets), nil
	}
	refs := make([][]string, len(examples))
	for i, e := range examples {
		refs[i] = e.References
	}
	return metrics.CIDErD(predictions, refs)
}

// ScoreLabels is the accuracy of predicted class indices (classification tasks only).
func (t *Task) ScoreLabels(examples []Example, predicted []int) (float64, error) {
	if t.Kind != Classification {
		return 0, fmt.Errorf("score %s: a captioning task has no labels; use Score", t.Name)
	}
	if len(examples) != len(predicted) {
		return 0, fmt.Errorf("score %s: %d examples but %d predictions", t.Name, len(examples), len(predicted))
	}
	labels := make([]int, len(examples))
	for i, e := range examples {
		labels[i] = e.Label
	}
	return metrics.Accuracy(predicted, labels), nil
}

// ClassOf maps a generated answer to a class index by its words (-1 when it is none).
func (t *Task) ClassOf(answer string) int {
	w := strings.Join(metrics.Words(answer), " ")
	for i, c := range t.Classes {
		if strings.Join(metrics.Words(c), " ") == w {
			return i
		}
	}
	return -1
}

// Options choose how tasks are loaded. The zero value gives the full splits, 32x32 RGB images.
type Options struct {
	// Fast keeps a small fixed subset of every split (FastTrain, FastEval), for tests and CI.
	Fast bool
	// ImageSize is the side of the square images given to models (default 32): 28x28 digits
	// and clothes are padded (or resized when smaller), 64x64 emoji are area-averaged down.
	ImageSize int
	// Channels is 3 (RGB; gray images repeated, the default) or 1 (gray; emoji converted to
	// luminance). Emoji transparency is composited over white.
	Channels int
}

// Sizes of the fast subset.
const (
	FastTrain = 256
	FastEval  = 64
)

// DefaultOptions are the zero Options with Fast set from the environment (mode.Fast:
// PEFTLAB_FAST=1 selects the fast subset).
func DefaultOptions() Options { return Options{Fast: mode.Fast()} }

func (o Options) withDefaults() (Options, error) {
	if o.ImageSize == 0 {
		o.ImageSize = 32
	}
	if o.Channels == 0 {
		o.Channels = 3
	}
	if o.Channels != 1 && o.Channels != 3 {
		return o, fmt.Errorf("tasks: Channels must be 1 or 3, got %d", o.Channels)
	}
	if o.ImageSize < 8 || o.ImageSize > 256 {
		return o, fmt.Errorf("tasks: ImageSize must be in [8, 256], got %d", o.ImageSize)
	}
	return o, nil
}

// Names lists the known tasks.
func Names() []string {
	names := make([]string, len(defs))
	for i, d := range defs {
		names[i] = d.name
	}
	return names
}

// Load loads a task by name. Its data set must be installed (see pkg/dataset); the error
// says how otherwise.
func Load(name string, opts Options) (*Task, error) {
	i := slices.IndexFunc(defs, func(d taskDef) bool { return d.name == name })
	if i < 0 {
		return nil, fmt.Errorf("unknown task %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	t, err := defs[i].load(opts)
	if err != nil {
		return nil, fmt.Errorf("task %s: %w", name, err)
	}
	t.Name = name
	t.Description = defs[i].about
	return t, nil
}

// Sets returns the data sets a task needs (for installing or checking them).
func Sets(name string) []string {
	for _, d := range defs {
		if d.name == name {
			return d.sets
		}
	}
	return nil
}
