package lab

import (
	"fmt"
)

// Baselines are the two rows every method must beat on the experiment's task: always giving
// the test split's most frequent answer, and the base untuned (the experiment without its
// methods, scored by generation and stored like any run). In the default store.
func (x Experiment) Baselines() ([]Run, error) {
	s, err := DefaultStore()
	if err != nil {
		return nil, err
	}
	return s.Baselines(x)
}

// Baselines is Experiment.Baselines in this store.
func (s *Store) Baselines(x Experiment) ([]Run, error) {
	maj, err := s.Majority(x)
	if err != nil {
		return nil, err
	}
	x.Methods, x.Name = nil, "base, untuned"
	untuned, err := s.run(x, runOptions{splits: []string{SplitValidation, SplitTest}, wait: true})
	if err != nil {
		return nil, err
	}
	return []Run{maj, untuned}, nil
}

// Majority scores always answering the test split's most frequent target (ties: the first
// in the split) with the task's metric. It trains nothing and stores nothing.
func (s *Store) Majority(x Experiment) (Run, error) {
	x.Methods = nil // nothing trains: no learning rate needed
	x, err := x.resolved(s.Fast)
	if err != nil {
		return Run{}, err
	}
	task, err := s.loadTask(x.Task)
	if err != nil {
		return Run{}, err
	}
	test := task.Test
	if x.Test > 0 {
		test = test[:min(len(test), x.Test)]
	}
	if len(test) == 0 {
		return Run{}, fmt.Errorf("majority answer of %s: no test examples", x.Task)
	}
	counts, best := map[string]int{}, ""
	for _, e := range test {
		if counts[e.Target]++; counts[e.Target] > counts[best] {
			best = e.Target
		}
	}
	answers := make([]string, len(test))
	for i := range answers {
		answers[i] = best
	}
	score, err := task.Score(test, answers)
	if err != nil {
		return Run{}, err
	}
	return Run{Name: "always “" + best + "”", Experiment: x, Metric: task.Metric, Score: score, State: Done,
		Scores: map[string]float64{SplitTest: score}}, nil
}
