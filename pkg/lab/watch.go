package lab

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// lossWindow is how many recent steps the progress line averages: single-batch losses are
// too noisy to read.
const lossWindow = 10

// Watch attaches a live progress display named name to tr: one line, updated in place, with
// the step, the mean training loss of the last few steps and the latest evaluation. For
// language modelling the evaluation's accuracy is per answer token, teacher-forced, and says
// so ("token accuracy"): it is not the task's metric, which eval.Generator.Score measures
// on generated answers. Call Done on the result once tr.Run returns (Train does both).
// Callbacks already set on tr (OnStep, OnEval) keep being called.
func Watch(tr *trainer.Trainer, name string) *nbui.Progress {
	p := nbui.NewProgress(name, tr.Config().Steps)
	var recent []float64
	eval := ""
	status := func() string {
		s := ""
		if len(recent) > 0 {
			sum := 0.0
			for _, l := range recent {
				sum += l
			}
			s = fmt.Sprintf("loss %.4g", sum/float64(len(recent)))
		}
		if eval != "" {
			if s != "" {
				s += " · "
			}
			s += eval
		}
		return s
	}
	prevStep, prevEval := tr.OnStep, tr.OnEval
	tr.OnStep = func(sp trainer.StepPoint) {
		if prevStep != nil {
			prevStep(sp)
		}
		recent = append(recent, sp.Loss)
		if len(recent) > lossWindow {
			recent = recent[1:]
		}
		p.Update(sp.Step+1, status())
	}
	tr.OnEval = func(ep trainer.EvalPoint) {
		if prevEval != nil {
			prevEval(ep)
		}
		what := "accuracy"
		if ep.Perplexity > 0 { // language modelling: the share of answer tokens predicted right
			what = "token accuracy"
		}
		eval = fmt.Sprintf("eval loss %.4g, %s %.1f%% (step %d)", ep.Loss, what, 100*ep.Accuracy, ep.Step)
		p.Update(ep.Step, status())
	}
	return p
}
