// Package taskstest gives tests a hand-made task small enough to learn in a few dozen steps,
// with its own tokenizer, so that tests of training and scoring need no dataset.
package taskstest

import (
	"testing"

	"github.com/peftlab/peftlab/pkg/tasks"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// Lights is a text classification task where a colour word decides the answer ("the bus
// light is red what now?" → "stop", green → "go"): 48 training examples and the same 16
// for validation and test, and a 120-token tokenizer trained on them. An untrained model
// scores about 0.5; a tiny one trained for 60 steps answers every test example right.
func Lights(t testing.TB) (*tasks.Task, *tokenizer.Tokenizer) {
	t.Helper()
	classes := []string{"stop", "go"}
	colours := []string{"red", "green"}
	things := []string{"car", "bike", "bus", "tram"}
	var train, eval []tasks.Example
	var texts []string
	for i := range 64 {
		c := i % 2
		p := "the " + things[i/2%4] + " light is " + colours[c] + " what now?"
		e := tasks.Example{Prompt: p, Target: classes[c], References: []string{classes[c]}, Label: c}
		texts = append(texts, p, classes[c])
		if i < 48 {
			train = append(train, e)
		} else {
			eval = append(eval, e)
		}
	}
	tok, err := tokenizer.Train(texts, tokenizer.TrainOptions{VocabSize: 120})
	if err != nil {
		t.Fatal(err)
	}
	return &tasks.Task{Name: "lights", Kind: tasks.Classification, Classes: classes, Metric: tasks.MetricAccuracy,
		Train: train, Validation: eval, Test: eval}, tok
}
