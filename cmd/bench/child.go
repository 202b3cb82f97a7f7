package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/gomlx/compute"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX style.
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/safetensors"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// spec is one row of the table, run in a child process of its own (so its
// peak memory is its own) by peftlab or by the PyTorch peer. The peer reads
// the same JSON (bench/torch/README.md).
type spec struct {
	Model   model.Config `json:"model"`
	Row     string       `json:"row"`
	Batch   int          `json:"batch"`
	Seq     int          `json:"seq"`
	Steps   int          `json:"steps"`
	Warmup  int          `json:"warmup"`
	LR      float64      `json:"lr"`
	Rank    int          `json:"rank"`
	Targets []string     `json:"lora_targets"`
	Threads int          `json:"threads"`
	Seed    int          `json:"seed"`
	MatmulN int          `json:"matmul_n,omitempty"`
	// Check, when set, asks for the forward loss on the weights and batch in
	// these files (written by peftlab's child, read by the peer).
	Check *checkFiles `json:"check,omitempty"`
}

type checkFiles struct {
	Weights string `json:"weights"`
	Batch   string `json:"batch"`
}

// result is what a child prints: one JSON object.
type result struct {
	Row      string  `json:"row"`
	Model    string  `json:"model"`
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	MaxMs    float64 `json:"max_ms"`
	Steps    int     `json:"steps"`
	// CPUMs is the process's CPU time (user+system) per timed step.
	CPUMs     float64 `json:"cpu_ms_per_step,omitempty"`
	Loss      float64 `json:"loss"`
	CheckLoss float64 `json:"check_loss,omitempty"`
	Trainable int     `json:"trainable_params"`
	Total     int     `json:"total_params"`
	Backend   string  `json:"backend,omitempty"`
	Torch     string  `json:"torch,omitempty"`
	Threads   int     `json:"threads,omitempty"`
	// PeakRSS is filled in by the parent from the child's resource usage.
	PeakRSS int64 `json:"peak_rss_bytes"`
	// StartRSS is the process's peak RSS once the backend (peftlab) or torch (the peer's
	// import_rss_bytes) is loaded, before any model exists: PeakRSS - StartRSS is what the row
	// itself holds, without the libraries (the XLA plugin maps ~200 MB, torch ~500 MB).
	StartRSS int64  `json:"start_rss_bytes,omitempty"`
	PeerRSS  int64  `json:"import_rss_bytes,omitempty"`
	Error    string `json:"error,omitempty"`
}

// runChild runs one row in this process.
func runChild(s spec) (r result, err error) {
	r = result{Row: s.Row, Model: s.Model.Name, Backend: backend.Describe()}
	be, err := backend.New()
	if err != nil {
		return r, err
	}
	r.StartRSS = maxRSS()
	if s.Row == rowMatmul {
		return runMatmul(be, s, r)
	}
	store := mlmodel.NewStore()
	scope := store.RootScope()
	if err := store.SetRNGStateFromSeed(int64(s.Seed)); err != nil {
		return r, err
	}
	if err := model.Init(be, scope, s.Model); err != nil {
		return r, err
	}
	batch := syntheticBatch(s)
	if s.Check != nil {
		if err := writeCheck(s, scope, batch); err != nil {
			return r, err
		}
	}
	var method peft.Method
	switch s.Row {
	case rowFT:
		method = full.Config{}
	case rowLoRA:
		method = lora.Config{Rank: s.Rank, Alpha: float64(s.Rank), Targets: s.Targets} // alpha = rank: scale 1, as the peer
	case rowAdaLink:
		method = adalink.Config{Rank: s.Rank}
	case rowForward:
	default:
		return r, fmt.Errorf("unknown row %q", s.Row)
	}
	var pm *peft.Model
	if method != nil {
		if pm, err = peft.New(s.Model.Layout(), peft.Adapter{Name: "bench", Method: method}); err != nil {
			return r, err
		}
	}
	tr, err := trainer.New(be, scope, s.Model, pm, trainer.Config{Steps: 1 << 30, BatchSize: s.Batch, LR: s.LR, Seed: int64(s.Seed)})
	if err != nil {
		return r, err
	}
	step := func() (float64, error) {
		if method == nil {
			m, err := tr.Evaluate([]trainer.Batch{batch})
			return m.Loss, err
		}
		return tr.Step(batch)
	}
	times, cpu, loss, err := timeSteps(s, step)
	if err != nil {
		return r, err
	}
	r.Loss = loss
	r.CPUMs = cpu
	r.fillTimes(times)
	if pm != nil {
		p := pm.Plan()
		r.Trainable, r.Total = p.Trainable, p.Total
	} else {
		r.Total = benchModel{Config: s.Model}.Weights()
	}
	return r, nil
}

// timeSteps runs s.Warmup untimed then s.Steps timed calls of step and
// returns their wall times, the CPU time per timed step in ms, and the
// first step's loss.
func timeSteps(s spec, step func() (float64, error)) (times []time.Duration, cpuMs, first float64, err error) {
	for i := 0; i < s.Warmup+s.Steps; i++ {
		if i == s.Warmup {
			cpuMs = -cpuSeconds() * 1000
		}
		start := time.Now()
		loss, err := step()
		if err != nil {
			return nil, 0, 0, fmt.Errorf("step %d: %w", i, err)
		}
		if i == 0 {
			first = loss
		}
		if i >= s.Warmup {
			times = append(times, time.Since(start))
		}
	}
	cpuMs = (cpuMs + cpuSeconds()*1000) / float64(s.Steps)
	return times, cpuMs, first, nil
}

func cpuSeconds() float64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return float64(u.Utime.Nano()+u.Stime.Nano()) / 1e9
}

func (r *result) fillTimes(times []time.Duration) {
	ms := make([]float64, len(times))
	for i, t := range times {
		ms[i] = float64(t.Nanoseconds()) / 1e6
	}
	slices.Sort(ms)
	r.Steps = len(ms)
	r.MinMs, r.MaxMs = ms[0], ms[len(ms)-1]
	r.MedianMs = median(ms)
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// syntheticBatch is the row's batch: tokens uniform in [1, Vocab) from the
// seed, targets the tokens shifted by one (the last target is 1), images
// uniform in [0, 1). The peer builds its own with the same shapes; the
// forward check writes this one for it.
func syntheticBatch(s spec) trainer.Batch {
	r := rand.New(rand.NewPCG(uint64(s.Seed), 2))
	n := s.Batch * s.Seq
	toks := make([]int32, n)
	for i := range toks {
		toks[i] = int32(1 + r.IntN(s.Model.Vocab-1))
	}
	targets := make([]int32, n)
	for b := 0; b < s.Batch; b++ {
		row := toks[b*s.Seq : (b+1)*s.Seq]
		copy(targets[b*s.Seq:], row[1:])
		targets[(b+1)*s.Seq-1] = 1
	}
	batch := trainer.Batch{
		Tokens:  tensors.FromFlatDataAndDimensions(toks, s.Batch, s.Seq),
		Targets: tensors.FromFlatDataAndDimensions(targets, s.Batch, s.Seq),
	}
	if c := s.Model; c.HasImage() {
		px := make([]float32, s.Batch*c.ImageSize*c.ImageSize*c.Channels)
		for i := range px {
			px[i] = r.Float32()
		}
		batch.Images = tensors.FromFlatDataAndDimensions(px, s.Batch, c.ImageSize, c.ImageSize, c.Channels)
	}
	return batch
}

// writeCheck saves the base weights under their variable paths
// ("/block/0/attn/q/weights", [in, out]) and the batch, for the peer's
// forward check on identical weights.
func writeCheck(s spec, scope *mlmodel.Scope, b trainer.Batch) error {
	weights := &safetensors.File{}
	for _, p := range s.Model.Layout().Params {
		v := scope.Store().GetVariable(p.Name)
		if v == nil {
			return fmt.Errorf("forward check: the model has no weight %s", p.Name)
		}
		value, err := v.Value()
		if err != nil {
			return err
		}
		st, err := safetensors.FromTensor(p.Name, value)
		if err != nil {
			return err
		}
		weights.Tensors = append(weights.Tensors, st)
	}
	if err := safetensors.WriteFile(s.Check.Weights, weights); err != nil {
		return err
	}
	batch := &safetensors.File{}
	for _, c := range []struct {
		name string
		t    *tensors.Tensor
	}{{"images", b.Images}, {"targets", b.Targets}, {"tokens", b.Tokens}} {
		if c.t == nil {
			continue
		}
		st, err := safetensors.FromTensor(c.name, c.t)
		if err != nil {
			return err
		}
		batch.Tensors = append(batch.Tensors, st)
	}
	return safetensors.WriteFile(s.Check.Batch, batch)
}

// runMatmul times an n×n by n×n float32 product: the machine's ceiling.
func runMatmul(be compute.Backend, s spec, r result) (result, error) {
	n := s.MatmulN
	rnd := rand.New(rand.NewPCG(uint64(s.Seed), 3))
	data := func() *tensors.Tensor {
		x := make([]float32, n*n)
		for i := range x {
			x[i] = rnd.Float32()
		}
		return tensors.FromFlatDataAndDimensions(x, n, n)
	}
	a, b := data(), data()
	exec, err := NewExec(be, func(x, y *Node) *Node { return Dot(x, y).Product() })
	if err != nil {
		return r, err
	}
	defer exec.Finalize()
	step := func() (float64, error) {
		out, err := exec.Call(a, b)
		if err != nil {
			return 0, err
		}
		if err := out[0].FinalizeAll(); err != nil {
			return 0, err
		}
		return 0, nil
	}
	times, cpu, _, err := timeSteps(s, step)
	if err != nil {
		return r, err
	}
	r.CPUMs = cpu
	r.fillTimes(times)
	return r, nil
}

// childMain runs the row in specJSON and prints its result as one JSON line.
func childMain(specJSON, cpuProfile string) error {
	var s spec
	dec := json.NewDecoder(strings.NewReader(specJSON))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("-child: %w", err)
	}
	if cpuProfile != "" {
		f, err := os.Create(fmt.Sprintf("%s.%s.%s", cpuProfile, s.Model.Name, s.Row))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := runChild(s)
	if err != nil {
		r.Error = err.Error()
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// maxRSS is this process's peak resident set so far, in bytes.
func maxRSS() int64 {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		return 0
	}
	return u.Maxrss * 1024
}
