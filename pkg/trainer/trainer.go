// Package trainer trains a base model with PEFT adapters attached, touching
// only the weights the adapters own.
//
// It runs GoMLX's train.Trainer with AdamW and a learning-rate schedule, and
// wraps the model function so that peft.Model.ApplyTrainable runs after every
// graph build: GoMLX does not save which variables train, and some layers
// mark theirs trainable again whenever they build, so freezing is re-applied
// each time, before the optimizer asks for gradients. Frozen weights get no
// gradient and no optimizer state and come out of training bit-identical.
//
// A run evaluates before the first step, every Config.EvalEvery steps and
// after the last; a non-finite training loss stops it with an error naming
// the step. Everything needed to read or repeat a run (config, seed, model,
// adapters, versions, backend, loss curve, evaluations) is kept in a Record,
// saved as JSON:
//
//	tr, err := trainer.New(b, ctx, base, pm, trainer.Config{Steps: 200, BatchSize: 32, LR: 1e-3, Schedule: trainer.Cosine})
//	if err != nil { return err }
//	rec, err := tr.Run(data)       // data: a trainer.Source, e.g. trainer.NewMemory(train, eval)
//	if err != nil { return err }
//	err = rec.Save("runs/adalink.json")
//
// With Trainer.CheckpointDir set, Run saves each training adapter alone
// (peft.SaveAdapter, never the frozen base) and the record after every
// evaluation. A nil *peft.Model trains every weight of the base (pretraining).
package trainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/gomlx/gomlx/ml/train"
	"github.com/gomlx/gomlx/ml/train/optimizer"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// Trainer trains one model with its adapters. It is not safe for concurrent use.
type Trainer struct {
	cfg     Config
	base    model.Config
	peft    *peft.Model
	hook    site.Hook
	backend compute.Backend
	scope   *mlmodel.Scope

	gt    *train.Trainer
	eval  *mlmodel.Exec
	lrVar *mlmodel.Variable
	spec  *batchSpec // Layout of the first batch; later batches must match it.
	step  int
	rec   *Record

	// OnStep, when set, is called after every training step (progress bars, live charts).
	OnStep func(StepPoint)
	// OnEval, when set, is called after every evaluation.
	OnEval func(EvalPoint)
	// CheckpointDir, when set, makes Run save a checkpoint there after every
	// evaluation (see Checkpoint), so the last one holds the final weights.
	CheckpointDir string
}

// batchSpec is the layout of a batch; it keys GoMLX's compiled graphs.
type batchSpec struct {
	tokens, images, weights bool
	objective               Objective
}

// New prepares training of base, whose weights are in ctx (loaded or still
// to be initialised), with the adapters of m (nil: train every weight).
// Nothing is built until the first step.
func New(b compute.Backend, scope *mlmodel.Scope, base model.Config, m *peft.Model, cfg Config) (*Trainer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := base.Validate(); err != nil {
		return nil, fmt.Errorf("base model: %w", err)
	}
	if b == nil || scope == nil {
		return nil, errors.New("trainer.New: backend and context are required")
	}
	t := &Trainer{cfg: cfg, base: base, peft: m, backend: b, scope: scope.Store().RootScope()}
	if m != nil {
		t.hook = m
		if p := m.Plan(); p.Trainable == 0 {
			return nil, fmt.Errorf("nothing to train: the adapters on %s own no trainable weights (are they all frozen?)", base.ModelName())
		}
	}
	if err := t.scope.Store().SetRNGStateFromSeed(cfg.Seed); err != nil {
		return nil, fmt.Errorf("seeding the context: %w", err)
	}
	opt := optimizer.Adam().LearningRate(cfg.LR).WeightDecay(cfg.WeightDecay).Done()
	t.gt = train.NewTrainer(b, t.scope.Store(), t.modelFn, lossFn, opt, nil, nil)
	// NewTrainer deletes the learning-rate variable; recreate it now so the
	// schedule can set it from the host before every step.
	t.lrVar = optimizer.LearningRateVarWithValue(t.scope, dtypes.Float32, cfg.LR)
	t.rec = newRecord(cfg, base, m)
	return t, nil
}

// Config returns the training configuration.
func (t *Trainer) Config() Config { return t.cfg }

// Steps returns the number of training steps taken so far.
func (t *Trainer) Steps() int { return t.step }

// Record returns the run's record so far (the same value Run returns).
func (t *Trainer) Record() *Record { return t.rec }

// modelFn builds the forward pass for train.Trainer, then re-applies which
// variables train: this is the only place that can, since it runs after the
// model created (and possibly re-flagged) its variables and before the
// optimizer lists the trainable ones.
func (t *Trainer) modelFn(scope *mlmodel.Scope, spec any, inputs []*Node) []*Node {
	out := t.forward(scope, spec.(batchSpec), inputs)
	t.applyTrainable(scope)
	return []*Node{out}
}

func (t *Trainer) applyTrainable(scope *mlmodel.Scope) {
	if t.peft != nil {
		t.peft.ApplyTrainable(scope)
	}
}

// forward returns class logits [B, Classes] or next-token logits [B, T, Vocab].
func (t *Trainer) forward(scope *mlmodel.Scope, s batchSpec, inputs []*Node) *Node {
	var in model.Inputs
	i := 0
	if s.tokens {
		in.Tokens, i = inputs[i], i+1
	}
	if s.images {
		in.Images = inputs[i]
	}
	if s.objective == Classification {
		return model.Classify(scope, t.base, t.hook, in)
	}
	return model.LMLogits(scope, t.base, t.hook, in)
}

// lossFn is the mean training loss: cross-entropy over examples
// (classification, labels = [Labels]) or the weighted mean over target
// tokens (language modelling, labels = [Targets, Weights]).
func lossFn(labels, predictions []*Node) *Node {
	sum, weight, _ := lossTerms(labels, predictions[0])
	return Div(sum, Max(weight, OnesLike(weight)))
}

// lossTerms returns the summed loss, the summed weight (examples or target
// tokens) and the weighted number of correct argmax predictions.
func lossTerms(labels []*Node, logits *Node) (sum, weight, correct *Node) {
	g := logits.Graph()
	targets := labels[0]
	var w *Node
	if len(labels) > 1 {
		w = labels[1]
	} else if targets.Rank() == 2 {
		w = ConvertDType(NotEqual(targets, ScalarZero(g, dtypes.Int32)), dtypes.Float32)
	} else {
		w = OnesLike(ConvertDType(targets, dtypes.Float32))
	}
	nll := model.NLL(logits, targets) // Shape of targets.
	hit := ConvertDType(Equal(ArgMax(logits, -1, dtypes.Int32), targets), dtypes.Float32)
	return ReduceAllSum(Mul(nll, w)), ReduceAllSum(w), ReduceAllSum(Mul(hit, w))
}

// prepare checks a batch against the model and the first batch, and splits
// it into GoMLX inputs and labels.
func (t *Trainer) prepare(b Batch) (batchSpec, []*tensors.Tensor, []*tensors.Tensor, error) {
	if err := b.checkShapes(); err != nil {
		return batchSpec{}, nil, nil, err
	}
	if _, err := b.Size(); err != nil {
		return batchSpec{}, nil, nil, err
	}
	obj, err := b.Objective()
	if err != nil {
		return batchSpec{}, nil, nil, err
	}
	s := batchSpec{tokens: b.Tokens != nil, images: b.Images != nil, weights: b.Weights != nil, objective: obj}
	if err := t.checkValues(b, s); err != nil {
		return batchSpec{}, nil, nil, err
	}
	if t.spec == nil {
		t.spec = &s
	} else if *t.spec != s {
		return batchSpec{}, nil, nil, fmt.Errorf("batch layout changed: the first batch had %s, this one has %s", *t.spec, s)
	}
	var ins, labels []*tensors.Tensor
	for _, x := range []*tensors.Tensor{b.Tokens, b.Images} {
		if x != nil {
			ins = append(ins, x)
		}
	}
	for _, x := range []*tensors.Tensor{b.Labels, b.Targets, b.Weights} {
		if x != nil {
			labels = append(labels, x)
		}
	}
	return s, ins, labels, nil
}

func (s batchSpec) String() string {
	return fmt.Sprintf("{tokens: %v, images: %v, weights: %v, objective: %s}", s.tokens, s.images, s.weights, s.objective)
}

// checkValues checks what the graph cannot report clearly: ids out of range
// (a gather would silently read garbage) and non-finite inputs.
func (t *Trainer) checkValues(b Batch, s batchSpec) error {
	c := t.base
	if s.tokens && !c.HasText() {
		return fmt.Errorf("batch has Tokens but model %s has no text input", c.ModelName())
	}
	if s.images && !c.HasImage() {
		return fmt.Errorf("batch has Images but model %s has no image input", c.ModelName())
	}
	if s.images {
		d := b.Images.Shape().Dimensions
		if d[1] != c.ImageSize || d[2] != c.ImageSize || d[3] != c.Channels {
			return fmt.Errorf("batch Images are %v, model %s takes [B, %d, %d, %d]", d, c.ModelName(), c.ImageSize, c.ImageSize, c.Channels)
		}
	}
	if s.tokens {
		if n := b.Tokens.Shape().Dimensions[1]; n > c.MaxLen {
			return fmt.Errorf("batch Tokens have %d positions, model %s takes at most %d (MaxLen)", n, c.ModelName(), c.MaxLen)
		}
	}
	if s.objective == Classification && c.Classes <= 0 {
		return fmt.Errorf("batch has Labels but model %s has no classification head (Classes = 0)", c.ModelName())
	}
	check := []struct {
		name string
		t    *tensors.Tensor
		n    int
	}{{"Tokens", b.Tokens, c.Vocab}, {"Targets", b.Targets, c.Vocab}, {"Labels", b.Labels, c.Classes}}
	for _, f := range check {
		if f.t == nil {
			continue
		}
		for i, v := range tensors.MustCopyFlatData[int32](f.t) {
			if v < 0 || int(v) >= f.n {
				return fmt.Errorf("batch %s[%d] = %d is outside [0, %d)", f.name, i, v, f.n)
			}
		}
	}
	for _, f := range []struct {
		name string
		t    *tensors.Tensor
	}{{"Images", b.Images}, {"Weights", b.Weights}} {
		if f.t == nil {
			continue
		}
		for i, v := range tensors.MustCopyFlatData[float32](f.t) {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("batch %s[%d] is %v", f.name, i, v)
			}
		}
	}
	return nil
}

// Step takes one optimizer step on the batch and returns its training loss
// (before the update). A non-finite loss stops training with an error; by
// then the update of that step has been applied, so the weights must be
// restored from a checkpoint before training on.
func (t *Trainer) Step(b Batch) (loss float64, err error) {
	start := time.Now()
	s, ins, labels, err := t.prepare(b)
	if err != nil {
		return 0, t.fail(fmt.Errorf("step %d: %w", t.step, err))
	}
	lr := t.cfg.LRAt(t.step)
	if err := t.lrVar.SetValue(tensors.FromScalar(float32(lr))); err != nil {
		return 0, t.fail(fmt.Errorf("step %d: setting the learning rate: %w", t.step, err))
	}
	var metrics []*tensors.Tensor
	if err := catch.Error(func() error {
		var err error
		// TrainStep takes ownership of (and frees) the tensors it is given;
		// the caller's batch stays theirs, so it gets copies.
		batch := train.Batch{Spec: s}
		if batch.Inputs, err = clones(ins); err != nil {
			return err
		}
		if batch.Labels, err = clones(labels); err != nil {
			return err
		}
		metrics, err = t.gt.TrainStep(batch)
		return err
	}); err != nil {
		return 0, t.fail(fmt.Errorf("step %d: %w", t.step, err))
	}
	if t.rec.TrainableParams == 0 {
		t.rec.TrainableParams = trainableParams(t.scope)
	}
	loss = float64(metrics[0].Value().(float32))
	if math.IsNaN(loss) || math.IsInf(loss, 0) {
		return loss, t.fail(fmt.Errorf("step %d: training loss is %v: training stopped (learning rate %g at this step; "+
			"lower it, or check the data). The step's update was applied, so the weights may now hold NaN/Inf",
			t.step, loss, lr))
	}
	p := StepPoint{Step: t.step, Loss: loss, LR: lr, Seconds: time.Since(start).Seconds()}
	t.rec.Steps = append(t.rec.Steps, p)
	t.step++
	if t.OnStep != nil {
		t.OnStep(p)
	}
	return loss, nil
}

// fail records err in the run record and returns it.
// clones returns host copies of ts.
func clones(ts []*tensors.Tensor) ([]*tensors.Tensor, error) {
	out := make([]*tensors.Tensor, len(ts))
	for i, x := range ts {
		c, err := x.LocalClone()
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

func (t *Trainer) fail(err error) error {
	t.rec.Error = err.Error()
	t.rec.Finished = time.Now().UTC()
	return err
}

func trainableParams(scope *mlmodel.Scope) int {
	n := 0
	for v := range scope.IterVariables() {
		if v.Trainable {
			n += v.Shape().Size()
		}
	}
	return n
}

// Metrics are evaluation results over a set of batches.
type Metrics struct {
	// Loss is the mean cross-entropy per example (classification) or per
	// weighted target token (language modelling), in nats.
	Loss float64 `json:"loss"`
	// Accuracy is the share of examples (or weighted target tokens) whose
	// argmax prediction is right.
	Accuracy float64 `json:"accuracy"`
	// Perplexity is exp(Loss), for language modelling (0 otherwise).
	Perplexity float64 `json:"perplexity,omitempty"`
	// Weight is the number of examples, or the total target-token weight.
	Weight float64 `json:"weight"`
}

// Evaluate computes Metrics over the batches without changing any weight.
func (t *Trainer) Evaluate(batches []Batch) (Metrics, error) {
	var sum, weight, correct float64
	var obj Objective
	for i, b := range batches {
		s, ins, labels, err := t.prepare(b)
		if err != nil {
			return Metrics{}, fmt.Errorf("evaluation batch %d: %w", i, err)
		}
		obj = s.objective
		if t.eval == nil {
			t.eval, err = mlmodel.NewExec(t.backend, t.scope.Store(), func(scope *mlmodel.Scope, all []*Node) []*Node {
				ins, labels := all[:len(ins)], all[len(ins):]
				logits := t.forward(scope, s, ins)
				t.applyTrainable(scope)
				sum, w, c := lossTerms(labels, logits)
				return []*Node{sum, w, c}
			})
			if err != nil {
				return Metrics{}, fmt.Errorf("evaluation: %w", err)
			}
		}
		args := make([]any, 0, len(ins)+len(labels))
		for _, x := range append(ins, labels...) {
			args = append(args, x)
		}
		var out []*tensors.Tensor
		if err := catch.Error(func() error {
			var err error
			out, err = t.eval.Exec(args...)
			return err
		}); err != nil {
			return Metrics{}, fmt.Errorf("evaluation batch %d: %w", i, err)
		}
		sum += float64(out[0].Value().(float32))
		weight += float64(out[1].Value().(float32))
		correct += float64(out[2].Value().(float32))
	}
	if weight == 0 {
		return Metrics{}, errors.New("evaluation: no examples (or all target weights are 0)")
	}
	m := Metrics{Loss: sum / weight, Accuracy: correct / weight, Weight: weight}
	if obj == LanguageModel {
		m.Perplexity = math.Exp(m.Loss)
	}
	if math.IsNaN(m.Loss) || math.IsInf(m.Loss, 0) {
		return m, fmt.Errorf("evaluation loss is %v", m.Loss)
	}
	return m, nil
}

// Run trains for the remaining Config.Steps on batches from src, evaluating
// on src's evaluation batches before the first step, every EvalEvery steps
// and after the last. It returns the run's record, also when it stops on an
// error (the record then says why in Record.Error).
func (t *Trainer) Run(src Source) (*Record, error) {
	evalBatches, err := src.EvalBatches(t.cfg.BatchSize)
	if err != nil {
		return t.rec, t.fail(fmt.Errorf("evaluation batches: %w", err))
	}
	evaluate := func() error {
		if len(evalBatches) == 0 {
			return nil
		}
		m, err := t.Evaluate(evalBatches)
		if err != nil {
			return t.fail(fmt.Errorf("step %d: %w", t.step, err))
		}
		p := EvalPoint{Step: t.step, Metrics: m}
		t.rec.Evals = append(t.rec.Evals, p)
		if t.OnEval != nil {
			t.OnEval(p)
		}
		if t.CheckpointDir != "" && t.step > 0 {
			if err := t.Checkpoint(t.CheckpointDir); err != nil {
				return t.fail(fmt.Errorf("step %d: %w", t.step, err))
			}
		}
		return nil
	}
	if t.step == 0 {
		if err := evaluate(); err != nil {
			return t.rec, err
		}
	}
	for t.step < t.cfg.Steps {
		b, err := src.TrainBatch(t.step, t.cfg.BatchSize, t.cfg.Seed)
		if err != nil {
			return t.rec, t.fail(fmt.Errorf("step %d: training batch: %w", t.step, err))
		}
		if _, err := t.Step(b); err != nil {
			return t.rec, err
		}
		if t.cfg.EvalEvery > 0 && t.step%t.cfg.EvalEvery == 0 && t.step < t.cfg.Steps {
			if err := evaluate(); err != nil {
				return t.rec, err
			}
		}
	}
	if err := evaluate(); err != nil {
		return t.rec, err
	}
	t.rec.Finished = time.Now().UTC()
	return t.rec, nil
}

// methodJSON returns a method's configuration as JSON, for the record.
func methodJSON(m peft.Method) json.RawMessage {
	data, err := json.Marshal(m)
	if err != nil {
		return json.RawMessage(fmt.Sprintf("%q", fmt.Sprint(m)))
	}
	return data
}
