package lab

import (
	"errors"
	"fmt"
)

// Sweep chooses the experiment's learning rate honestly: each of lrs trains and is scored
// on the validation split only; the best validation score wins (the smaller learning rate on
// a tie), and only the winner is scored on the test split, once. It returns the winner's run,
// with its test score, and every run of the sweep. The runs live in the default store, so a
// second call trains nothing.
func (x Experiment) Sweep(lrs ...float64) (best Run, all []Run, err error) {
	s, err := DefaultStore()
	if err != nil {
		return Run{}, nil, err
	}
	return s.Sweep(x, lrs...)
}

// Sweep is Experiment.Sweep in this store.
func (s *Store) Sweep(x Experiment, lrs ...float64) (best Run, all []Run, err error) {
	o := runOptions{splits: []string{SplitValidation, SplitTest}, wait: true, show: true}
	lr, all, err := s.sweep(x, lrs, o)
	if err != nil {
		return Run{}, all, err
	}
	x.LR = lr
	best, err = s.run(x, o)
	return best, all, err
}

// sweep trains x at each learning rate, scored on validation, and returns the winner's
// learning rate. A failed learning rate (a diverged run) loses; all failing is an error.
func (s *Store) sweep(x Experiment, lrs []float64, o runOptions) (float64, []Run, error) {
	if len(lrs) == 0 {
		return 0, nil, errors.New("learning-rate sweep: no learning rates")
	}
	o.splits = []string{SplitValidation}
	var runs []Run
	best, bestLR := -1.0, 0.0
	for _, lr := range lrs {
		x.LR = lr
		r, err := s.run(x, o)
		if err != nil && r.State != Failed {
			return 0, runs, fmt.Errorf("learning-rate sweep at %g: %w", lr, err)
		}
		runs = append(runs, r)
		if r.State == Failed {
			continue
		}
		v, ok := r.Scores[SplitValidation]
		if !ok {
			return 0, runs, fmt.Errorf("learning-rate sweep at %g: the run has no validation score (no validation examples?)", lr)
		}
		if v > best || (v == best && lr < bestLR) {
			best, bestLR = v, lr
		}
	}
	if best < 0 {
		return 0, runs, fmt.Errorf("learning-rate sweep of %s: every learning rate failed (%s)", x.label(), runs[0].Error)
	}
	return bestLR, runs, nil
}
