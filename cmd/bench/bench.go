package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/peftlab/peftlab/pkg/backend"
)

// bench runs the table: rows interleaved peftlab, peer, peftlab, peer...
type bench struct {
	models                 []benchModel
	rows                   []string
	steps, warmup, threads int
	matmulN                int
	peer                   *peer
	cpuProfile             string
	timeout                time.Duration
}

// pair is one row measured by both sides.
type pair struct {
	Model string  `json:"model"`
	Row   string  `json:"row"`
	Ours  *result `json:"peftlab"`
	Peer  *result `json:"pytorch,omitempty"`
	// Tokens and FLOPs are per step (see benchModel.ForwardFLOPs).
	Tokens int     `json:"tokens_per_step,omitempty"`
	FLOPs  float64 `json:"flops_per_step"`
}

// Ratio is peftlab's median time over the peer's (0 when either is missing).
func (p pair) Ratio() float64 {
	if p.Ours == nil || p.Peer == nil || p.Ours.Error != "" || p.Peer.Error != "" || p.Peer.MedianMs == 0 {
		return 0
	}
	return p.Ours.MedianMs / p.Peer.MedianMs
}

// forwardCheck compares one forward loss on identical weights.
type forwardCheck struct {
	Model    string  `json:"model"`
	Ours     float64 `json:"peftlab_loss"`
	Peer     float64 `json:"pytorch_loss"`
	Relative float64 `json:"relative_difference"`
	OK       bool    `json:"ok"`
}

// report is the whole run: what the table and the JSON show.
type report struct {
	Date    string        `json:"date"`
	CPU     string        `json:"cpu"`
	Cores   int           `json:"cores"`
	Go      string        `json:"go"`
	Backend string        `json:"backend"`
	Matmul  string        `json:"matmul_path,omitempty"`
	Torch   string        `json:"torch,omitempty"`
	Threads int           `json:"torch_threads,omitempty"`
	Steps   int           `json:"steps"`
	Ceiling *pair         `json:"matmul,omitempty"`
	Rows    []pair        `json:"rows"`
	Check   *forwardCheck `json:"forward_check,omitempty"`
	Models  []benchModel  `json:"models"`
}

func (b *bench) run() (*report, error) {
	rep := &report{Date: time.Now().UTC().Format("2006-01-02"), CPU: backend.CPU(), Cores: runtime.NumCPU(),
		Go: runtime.Version(), Backend: backend.Describe(), Steps: b.steps, Models: b.models}
	if backend.IsGo(backend.Config()) {
		rep.Matmul = backend.MatmulPath() // XLA brings its own products
	}
	if b.peer != nil {
		rep.Torch, rep.Threads = b.peer.version, b.threads
	}
	if b.matmulN > 0 {
		s := b.spec(b.models[0], rowMatmul)
		s.MatmulN = b.matmulN
		p := b.measure(s)
		p.Model = fmt.Sprintf("%d³ product", b.matmulN)
		p.FLOPs = 2 * math.Pow(float64(b.matmulN), 3)
		rep.Ceiling = &p
	}
	for _, m := range b.models {
		for _, row := range b.rows {
			s := b.spec(m, row)
			p := b.measure(s)
			p.Tokens, p.FLOPs = m.Tokens(), m.StepFLOPs(row)
			rep.Rows = append(rep.Rows, p)
		}
	}
	if b.peer != nil {
		c, err := b.forwardCheck(b.models[0])
		if err != nil {
			return nil, err
		}
		rep.Check = c
	}
	return rep, nil
}

func (b *bench) spec(m benchModel, row string) spec {
	return spec{Model: m.Config, Row: row, Batch: m.Batch, Seq: m.Seq, Steps: b.steps, Warmup: b.warmup,
		LR: 1e-3, Rank: benchRank, Targets: loraTargets, Threads: b.threads, Seed: 1}
}

// measure runs one row on both sides, peftlab first.
func (b *bench) measure(s spec) pair {
	p := pair{Model: s.Model.Name, Row: s.Row}
	fmt.Fprintf(os.Stderr, "bench: %s %s ...", s.Model.Name, rowNames[s.Row])
	p.Ours = b.runOurs(s)
	fmt.Fprintf(os.Stderr, " peftlab %s", brief(p.Ours))
	if b.peer != nil {
		p.Peer = b.runPeer(s)
		fmt.Fprintf(os.Stderr, ", pytorch %s", brief(p.Peer))
	}
	fmt.Fprintln(os.Stderr)
	return p
}

func brief(r *result) string {
	if r.Error != "" {
		return "FAILED"
	}
	return fmt.Sprintf("%.1f ms", r.MedianMs)
}

func (b *bench) runOurs(s spec) *result {
	self, err := os.Executable()
	if err != nil {
		return &result{Row: s.Row, Model: s.Model.Name, Error: err.Error()}
	}
	js, _ := json.Marshal(s)
	args := []string{"-child", string(js)}
	if b.cpuProfile != "" {
		args = append(args, "-cpuprofile", b.cpuProfile)
	}
	return b.runProcess(s, func(ctx context.Context) *exec.Cmd { return exec.CommandContext(ctx, self, args...) })
}

func (b *bench) runPeer(s spec) *result {
	js, _ := json.Marshal(s)
	return b.runProcess(s, func(ctx context.Context) *exec.Cmd { return b.peer.command(ctx, js, b.threads) })
}

// runProcess runs a row's child, parses its result and records its peak
// memory. A child that runs past the row timeout is killed: a hung backend
// fails the row loudly instead of stalling the table.
func (b *bench) runProcess(s spec, mk func(context.Context) *exec.Cmd) *result {
	limit := b.timeout
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := mk(ctx)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	runErr := cmd.Run()
	r := &result{Row: s.Row, Model: s.Model.Name}
	if ctx.Err() != nil {
		r.Error = fmt.Sprintf("killed after %s (hung?)", limit)
		return r
	}
	line := lastLine(out.String())
	if err := json.Unmarshal([]byte(line), r); err != nil {
		r.Error = fmt.Sprintf("%v: %s", runErr, strings.TrimSpace(lastLines(errOut.String(), 5)))
		return r
	}
	if runErr != nil && r.Error == "" {
		r.Error = fmt.Sprintf("%v: %s", runErr, strings.TrimSpace(lastLines(errOut.String(), 5)))
	}
	if u, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.PeakRSS = u.Maxrss * 1024
	}
	if r.StartRSS == 0 {
		r.StartRSS = r.PeerRSS
	}
	return r
}

// forwardCheck computes one forward loss of m with peftlab, saves its
// weights and batch, and has the peer compute the loss of the same weights.
func (b *bench) forwardCheck(m benchModel) (*forwardCheck, error) {
	dir, err := os.MkdirTemp("", "peftlab-bench-check-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s := b.spec(m, rowForward)
	s.Steps, s.Warmup = 1, 1
	s.Check = &checkFiles{Weights: filepath.Join(dir, "weights.safetensors"), Batch: filepath.Join(dir, "batch.safetensors")}
	ours := b.runOurs(s)
	if ours.Error != "" {
		return nil, fmt.Errorf("forward check: peftlab: %s", ours.Error)
	}
	peer := b.runPeer(s)
	if peer.Error != "" {
		return nil, fmt.Errorf("forward check: pytorch: %s", peer.Error)
	}
	rel := math.Abs(ours.Loss-peer.CheckLoss) / math.Max(math.Abs(peer.CheckLoss), 1e-12)
	return &forwardCheck{Model: m.Config.Name, Ours: ours.Loss, Peer: peer.CheckLoss, Relative: rel, OK: rel <= 1e-4}, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
