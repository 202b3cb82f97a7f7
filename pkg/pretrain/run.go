package pretrain

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/gomlx/compute"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// Options adjust a pretraining run.
type Options struct {
	// Out is the checkpoint directory. It is replaced only when the run has succeeded and the
	// new checkpoint verifies; until then the files go to a sibling temporary directory.
	Out string
	// Steps overrides the recipe's number of steps (0 keeps it); warmup and evaluation
	// intervals shrink with it.
	Steps int
	// Fast uses the fast subsets of every data set (tests and smoke runs).
	Fast bool
	// EvalExamples is the number of test examples per task scored after training (default 200).
	EvalExamples int
	// Tokenizer is the shared vocabulary; nil trains it with SharedTokenizer.
	Tokenizer *tokenizer.Tokenizer
	// Log receives progress lines (nil: none).
	Log io.Writer
	// Command is recorded in the report as the way to remake the base.
	Command string
}

// SharedTokenizer trains the vocabulary all bases share, on the text base's corpus and the
// tasks' instructions and answers (VocabTexts). Training is deterministic, so every base's run
// gets the same vocabulary.
func SharedTokenizer(fast bool) (*tokenizer.Tokenizer, error) {
	r, err := RecipeFor(Text)
	if err != nil {
		return nil, err
	}
	o := r.Text
	o.Fast = fast
	corpus, err := LoadText(o)
	if err != nil {
		return nil, err
	}
	return TrainTokenizer(corpus, fast)
}

// Run pretrains the base of recipe r, saves it to o.Out with its report (bases.Write), scores
// it on held-out data and returns the report. The scores are measured on the checkpoint as
// saved and re-loaded, so they belong to exactly the shipped weights.
func Run(b compute.Backend, r Recipe, o Options) (*bases.Report, error) {
	logf := func(format string, args ...any) {
		if o.Log != nil {
			fmt.Fprintf(o.Log, format+"\n", args...)
		}
	}
	if o.Out == "" {
		return nil, fmt.Errorf("pretrain %s: no output directory", r.Name)
	}
	if o.EvalExamples <= 0 {
		o.EvalExamples = 200
	}
	if o.Steps > 0 {
		r.Train.Steps = o.Steps
		r.Train.Warmup = min(r.Train.Warmup, o.Steps/10)
		if r.Train.EvalEvery >= o.Steps {
			r.Train.EvalEvery = 0
		}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	tok := o.Tokenizer
	var corpus *TextCorpus
	var err error
	if r.Name == Text || !r.Multimodal() {
		t := r.Text
		t.Fast = o.Fast
		logf("%s: loading the text corpus", r.Name)
		if corpus, err = LoadText(t); err != nil {
			return nil, err
		}
		if tok == nil {
			logf("%s: training the shared tokenizer", r.Name)
			if tok, err = TrainTokenizer(corpus, o.Fast); err != nil {
				return nil, err
			}
		}
	} else if tok == nil {
		logf("%s: training the shared tokenizer", r.Name)
		if tok, err = SharedTokenizer(o.Fast); err != nil {
			return nil, err
		}
	}
	r.Model.Vocab = tok.VocabSize() // smaller than VocabSize only on the fast subsets

	report := &bases.Report{Name: r.Name, About: r.About, Command: o.Command}
	var src trainer.Source
	if r.Multimodal() {
		m := r.Mixture
		m.Fast = o.Fast
		mix, ts, err := LoadMixture(tok, r.Tasks, m)
		if err != nil {
			return nil, err
		}
		src = mix
		report.Data = bases.Data{
			Corpus: fmt.Sprintf("balanced mixture of %d pkg/tasks training splits (%d examples each, smaller splits repeated), 32x32 RGB images",
				len(ts), m.PerTask),
			Tasks: r.Tasks, HeldOutTasks: r.HeldOutTasks, Examples: mix.Len(), SeqLen: r.SeqLen,
		}
	} else {
		train, err := Windows(tok, corpus.Train, r.SeqLen, 0)
		if err != nil {
			return nil, err
		}
		val, err := Windows(tok, corpus.Validation, r.SeqLen, 2)
		if err != nil {
			return nil, err
		}
		mem, err := trainer.NewMemory(train.All(), val.All())
		if err != nil {
			return nil, err
		}
		src = mem
		docs := map[string]int{}
		for _, d := range corpus.Train {
			docs[d.Source]++
		}
		report.Data = bases.Data{
			Corpus: fmt.Sprintf("training texts of %v (task instructions removed; validation and test texts held out) and the fortune quotes outside fortune-topic's validation and test splits, as [BOS] text [EOS] in windows of %d tokens",
				TextTasks, r.SeqLen),
			Documents: docs, Examples: train.N, SeqLen: r.SeqLen, Tokens: train.Targets,
		}
	}
	report.Data.SeenExamples = r.Train.Steps * r.Train.BatchSize

	// Train.
	scope := mlmodel.NewStore().RootScope()
	tr, err := trainer.New(b, scope, r.Model, nil, r.Train)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	tr.OnStep = func(p trainer.StepPoint) {
		if n := tr.Steps(); n == 1 || n%25 == 0 || n == r.Train.Steps {
			elapsed := time.Since(start)
			eta := time.Duration(float64(elapsed) / float64(n) * float64(r.Train.Steps-n))
			logf("%s: step %d/%d loss %.4f lr %.2g (%.2fs/step, %s elapsed, ~%s left)", r.Name, n, r.Train.Steps, p.Loss, p.LR,
				p.Seconds, elapsed.Round(time.Second), eta.Round(time.Second))
		}
	}
	tr.OnEval = func(p trainer.EvalPoint) {
		logf("%s: validation after %d steps: loss %.4f, token accuracy %.3f", r.Name, p.Step, p.Loss, p.Accuracy)
	}
	logf("%s: training %s (%d weights) for %d steps of %d sequences on %s", r.Name, r.Model.ModelName(),
		r.Model.Layout().NumParams(), r.Train.Steps, r.Train.BatchSize, backend.Describe())
	rec, err := tr.Run(src)
	if err != nil {
		return nil, fmt.Errorf("pretrain %s: %w", r.Name, err)
	}
	report.TrainMinutes = time.Since(start).Minutes()
	report.MedianStepSeconds = medianStep(rec)
	report.Machine = fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), backend.Describe())
	report.Training = rec

	// Save to a temporary directory, reload with verification, score, and swap it in.
	tmp := fmt.Sprintf("%s.tmp-%d", filepath.Clean(o.Out), os.Getpid())
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := bases.Write(tmp, r.Model, scope, tok, report); err != nil {
		return nil, err
	}
	saved, err := bases.LoadDir(tmp)
	if err != nil {
		return nil, fmt.Errorf("pretrain %s: the checkpoint just written does not verify: %w", r.Name, err)
	}
	logf("%s: scoring the saved checkpoint on held-out data", r.Name)
	if r.Multimodal() {
		names := slices.Concat(r.Tasks, r.HeldOutTasks)
		report.HeldOut, report.Samples, err = TaskScores(b, saved.Scope, saved.Config, saved.Tokenizer, names, r.Tasks, o.EvalExamples, r.SeqLen, o.Fast)
	} else {
		report.HeldOut, report.Samples, err = evalText(b, saved.Scope, saved.Config, saved.Tokenizer, corpus, r.SeqLen)
	}
	if err != nil {
		return nil, fmt.Errorf("pretrain %s: held-out evaluation: %w", r.Name, err)
	}
	for _, s := range report.HeldOut {
		logf("%s: held-out %s %s = %.4f (n=%d, seen in pretraining: %v)", r.Name, s.Task, s.Metric, s.Value, s.N, s.Seen)
	}
	if err := bases.WriteReport(tmp, report); err != nil {
		return nil, err
	}
	if _, err := bases.LoadDir(tmp); err != nil {
		return nil, fmt.Errorf("pretrain %s: the finished checkpoint does not verify: %w", r.Name, err)
	}
	if nbui.EChartsInstalled() {
		if err := nbui.WriteHTML(filepath.Join(tmp, "report.html"), "pretraining "+r.Name, LossChart(report)); err != nil {
			return nil, err
		}
	}
	if err := replaceDir(tmp, o.Out); err != nil {
		return nil, fmt.Errorf("pretrain %s: %w", r.Name, err)
	}
	logf("%s: wrote %s (base hash %s)", r.Name, o.Out, report.BaseHash)
	return report, nil
}

// replaceDir moves the directory from into the place of to, keeping the old one until the
// move has succeeded.
func replaceDir(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(filepath.Clean(to)), 0o755); err != nil {
		return err
	}
	old := fmt.Sprintf("%s.old-%d", filepath.Clean(to), os.Getpid())
	hadOld := false
	if _, err := os.Stat(to); err == nil {
		if err := os.Rename(to, old); err != nil {
			return err
		}
		hadOld = true
	}
	if err := os.Rename(from, to); err != nil {
		if hadOld {
			_ = os.Rename(old, to)
		}
		return err
	}
	if hadOld {
		return os.RemoveAll(old)
	}
	return nil
}

func medianStep(rec *trainer.Record) float64 {
	if len(rec.Steps) == 0 {
		return 0
	}
	s := make([]float64, len(rec.Steps))
	for i, p := range rec.Steps {
		s[i] = p.Seconds
	}
	slices.Sort(s)
	return s[len(s)/2]
}

// LossChart is the training-loss curve of a report, with the validation loss.
func LossChart(r *bases.Report) nbui.Chart {
	train := nbui.Series{Name: "training loss", Y: r.Training.Losses()}
	train.X = make([]float64, len(train.Y))
	for i, p := range r.Training.Steps {
		train.X[i] = float64(p.Step)
	}
	val := nbui.Series{Name: "validation loss"}
	for _, e := range r.Training.Evals {
		val.X = append(val.X, float64(e.Step))
		val.Y = append(val.Y, e.Loss)
	}
	return nbui.Line("pretraining "+r.Name+" ("+r.Model.ModelName()+")", nbui.Axes{X: "step", Y: "loss"}, train, val)
}
