package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gomlx/compute"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

// The serving methods Measure compares.
const (
	// MethodBase is the bare base: every example without an adapter.
	MethodBase = "base"
	// MethodAdaLink is AdaLink, mixed: one batch, weights gathered per example.
	MethodAdaLink = "AdaLink (mixed)"
	// MethodLoRA is LoRA unmerged, mixed: per-example low-rank weights gathered in every
	// adapted layer.
	MethodLoRA = "LoRA unmerged (mixed, gathered)"
	// MethodLoRASingle is LoRA unmerged as the lab trains it (peft.New's layers), one model
	// per task: batches split by task. At K = 1 it is the single-adapter batch.
	MethodLoRASingle = "LoRA unmerged (one model per task)"
	// MethodLoRAMerged is LoRA merged into a copy of the base per task: batches split by task.
	MethodLoRAMerged = "LoRA merged (one model per task)"
	// MethodFT is full fine-tuning, one model per task: batches split by task.
	MethodFT = "FT (one model per task)"
)

// Methods lists the methods Measure runs by default, in display order.
var Methods = []string{MethodBase, MethodAdaLink, MethodLoRA, MethodLoRASingle, MethodLoRAMerged, MethodFT}

// MeasureConfig is one serving measurement; zero fields take the defaults.
type MeasureConfig struct {
	// Base is the base to serve (required).
	Base    *bases.Base
	Backend compute.Backend
	// Batch is the batch size (default 16); Ks the numbers of distinct tasks per batch
	// (default 1, 2, 4, ... up to Batch), each task getting Batch/K examples.
	Batch int
	Ks    []int
	// PromptTokens is the prompt length of every example, [BOS] and [SEP] included (default
	// 24); NewTokens the tokens each generates (default 8, never stopping early, so every
	// method does the same work).
	PromptTokens, NewTokens int
	// Rank is AdaLink's and LoRA's rank (default 8); LoRA adapts the query and value
	// projections of every block (the LoRA paper's choice), AdaLink the text input.
	Rank int
	// Repeats is the number of timed runs per point (default 5); the time reported is their
	// median. Runs go round-robin over every point, so a slow moment of the machine hits all
	// methods alike.
	Repeats int
	// Methods to run (default Methods).
	Methods []string
	// MemoryNs are the task counts of the memory measurement (nil: 1, 10, 100; an empty,
	// non-nil slice skips it).
	MemoryNs []int
	// Dir holds the synthetic adapters (default a temporary directory, removed after).
	Dir string
	// Progress, when set, is called with a line of what is being done.
	Progress func(string)
}

// Point is the time of one batch of one method with K distinct tasks.
type Point struct {
	Method string `json:"method"`
	K      int    `json:"k"`
	// BatchMS is the median wall time of one batch (Batch examples, NewTokens each), MinMS
	// the fastest run.
	BatchMS float64 `json:"batch_ms"`
	MinMS   float64 `json:"min_ms"`
	// TokensPerSecond is generated tokens per second at the median.
	TokensPerSecond float64 `json:"tokens_per_second"`
	// VsBase is the median, over the rounds, of the batch's time over the time of the bare
	// base's batch run just before it (paired, so that a busy moment of the machine weighs
	// on both).
	VsBase float64 `json:"vs_base"`
	// CPUMS is the median CPU time (user + system, all threads) the process spent on one
	// batch, and VsBaseCPU the paired ratio of CPU times: on a machine shared with other
	// work, CPU time counts only this work, where wall time also counts the waits for a core.
	CPUMS     float64 `json:"cpu_ms"`
	VsBaseCPU float64 `json:"vs_base_cpu"`
}

// MemoryRow is what holding N tasks of one method costs.
type MemoryRow struct {
	Method string `json:"method"`
	N      int    `json:"n"`
	// ParamBytes is the float32 bytes of the tasks' own weights: what a method must keep
	// per task (AdaLink's and LoRA's matrices, a merged or fine-tuned copy of the weights it
	// changes).
	ParamBytes int64 `json:"param_bytes"`
	// HeapBytes is the Go heap the engine grew by when loading the N tasks (after garbage
	// collection): the implementation's real cost, tables, host copies and padding included.
	HeapBytes int64 `json:"heap_bytes"`
	// VsBaseCopy is ParamBytes over the bytes of one copy of the base's weights.
	VsBaseCopy float64 `json:"vs_base_copy"`
	// HeapVsBaseCopy is HeapBytes over the same.
	HeapVsBaseCopy float64 `json:"heap_vs_base_copy"`
}

// Measurement is Measure's result.
type Measurement struct {
	Base      string        `json:"base"`
	BaseBytes int64         `json:"base_bytes"`
	Config    MeasureConfig `json:"-"`
	Batch     int           `json:"batch"`
	Prompt    int           `json:"prompt_tokens"`
	NewTokens int           `json:"new_tokens"`
	Rank      int           `json:"rank"`
	Repeats   int           `json:"repeats"`
	Points    []Point       `json:"points"`
	Memory    []MemoryRow   `json:"memory"`
	Date      string        `json:"date"`
	Machine   string        `json:"machine"`
	// Compiles is the number of graphs the engine compiled during the timed runs: 0 shows
	// that mixing tasks never recompiled.
	Compiles int64 `json:"compiles_during_timing"`
}

// Point returns the point of method at K.
func (m *Measurement) Point(method string, k int) (Point, bool) {
	for _, p := range m.Points {
		if p.Method == method && p.K == k {
			return p, true
		}
	}
	return Point{}, false
}

// Mem returns the memory row of method at N.
func (m *Measurement) Mem(method string, n int) (MemoryRow, bool) {
	for _, r := range m.Memory {
		if r.Method == method && r.N == n {
			return r, true
		}
	}
	return MemoryRow{}, false
}

func (c *MeasureConfig) defaults() error {
	if c.Base == nil {
		return fmt.Errorf("serve.Measure: no base given")
	}
	if c.Batch <= 0 {
		c.Batch = 16
	}
	if len(c.Ks) == 0 {
		for k := 1; k <= c.Batch; k *= 2 {
			c.Ks = append(c.Ks, k)
		}
	}
	for _, k := range c.Ks {
		if k < 1 || k > c.Batch || c.Batch%k != 0 {
			return fmt.Errorf("serve.Measure: K = %d does not divide the batch of %d", k, c.Batch)
		}
	}
	if c.PromptTokens <= 0 {
		c.PromptTokens = 24
	}
	if c.NewTokens <= 0 {
		c.NewTokens = 8
	}
	if c.Rank <= 0 {
		c.Rank = 8
	}
	if c.Repeats <= 0 {
		c.Repeats = 5
	}
	if len(c.Methods) == 0 {
		c.Methods = Methods
	}
	if c.MemoryNs == nil {
		c.MemoryNs = []int{1, 10, 100}
	}
	if c.Progress == nil {
		c.Progress = func(string) {}
	}
	return nil
}

// methodConfig is the adapter of a method and how it is loaded.
func (c *MeasureConfig) methodConfig(method string) (peft.Method, LoadOptions, bool) {
	qv := lora.Config{Rank: c.Rank, Alpha: float64(c.Rank)}
	switch method {
	case MethodAdaLink:
		return adalink.Config{Rank: c.Rank, Modalities: []string{"text"}}, LoadOptions{}, true
	case MethodLoRA:
		return qv, LoadOptions{}, true
	case MethodLoRASingle:
		return qv, LoadOptions{PerTask: true}, true
	case MethodLoRAMerged:
		return qv, LoadOptions{Merge: true}, true
	case MethodFT:
		return full.Config{Preset: "all"}, LoadOptions{}, true
	}
	return nil, LoadOptions{}, false
}

// Measure times batches of every method against the number K of distinct tasks in them,
// and the memory of holding N tasks; see MeasureConfig. The adapters are synthetic (random
// weights, see SyntheticAdapter): serving cost does not depend on what the weights learned.
func Measure(cfg MeasureConfig) (*Measurement, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "peftlab-serve-measure-*")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	e, err := New(cfg.Base, Options{Backend: cfg.Backend, MaxBatch: cfg.Batch, MaxNew: cfg.NewTokens,
		MaxNewLimit: cfg.NewTokens, IgnoreEnd: true})
	if err != nil {
		return nil, err
	}
	c := e.Config()
	if cfg.PromptTokens+cfg.NewTokens-1 > c.MaxLen {
		return nil, fmt.Errorf("serve.Measure: %d prompt and %d new tokens exceed the base's %d positions", cfg.PromptTokens, cfg.NewTokens, c.MaxLen)
	}
	m := &Measurement{Base: e.BaseName(), Config: cfg, Batch: cfg.Batch, Prompt: cfg.PromptTokens, NewTokens: cfg.NewTokens,
		Rank: cfg.Rank, Repeats: cfg.Repeats, Date: time.Now().UTC().Format("2006-01-02"), Machine: Machine()}
	for _, p := range c.Layout().Params {
		m.BaseBytes += int64(4 * p.Size())
	}

	// Load K_max tasks of every method.
	kmax := slices.Max(cfg.Ks)
	names := map[string][]string{}
	for mi, method := range cfg.Methods {
		mc, opts, ok := cfg.methodConfig(method)
		if method == MethodBase {
			continue
		}
		if !ok {
			return nil, fmt.Errorf("serve.Measure: unknown method %q (known: %v)", method, Methods)
		}
		cfg.Progress(fmt.Sprintf("loading %d tasks of %s", kmax, method))
		for i := range kmax {
			name := fmt.Sprintf("m%d-task%d", mi, i)
			d := filepath.Join(dir, name)
			if err := SyntheticAdapter(d, cfg.Base, name, mc, uint64(1000*mi+i+1)); err != nil {
				return nil, err
			}
			if _, err := e.LoadWith(name, d, opts); err != nil {
				return nil, err
			}
			names[method] = append(names[method], name)
		}
	}

	// One prompt of exactly PromptTokens tokens for every example.
	ids := e.Prompt("is this mail spam or ham? congratulations, you have been selected for a free cruise to the islands, " +
		"reply today with your details and claim the prize before the offer ends this week")
	if len(ids) < cfg.PromptTokens {
		pad := slices.Repeat(ids[1:len(ids)-1], cfg.PromptTokens/len(ids)+1)
		ids = append(append([]int32{tokenizer.BosID}, pad...), tokenizer.SepID)
	}
	prompt := append(slices.Clone(ids[:cfg.PromptTokens-1]), tokenizer.SepID)
	batch := func(method string, k int) []Item {
		items := make([]Item, cfg.Batch)
		for i := range items {
			items[i] = Item{Tokens: prompt, MaxNew: cfg.NewTokens}
			if method != MethodBase {
				items[i].Adapter = names[method][i%k]
			}
		}
		return items
	}
	type key struct {
		method string
		k      int
	}
	var keys []key
	for _, method := range cfg.Methods {
		if method == MethodBase {
			keys = append(keys, key{method, 1})
			continue
		}
		for _, k := range cfg.Ks {
			keys = append(keys, key{method, k})
		}
	}
	var cpu time.Duration // of the last run
	run := func(k key) (time.Duration, error) {
		items := batch(k.method, k.k)
		c0, t := cpuTime(), time.Now()
		res, err := e.Generate(items)
		d := time.Since(t)
		cpu = cpuTime() - c0
		if err != nil {
			return 0, err
		}
		for _, r := range res {
			if r.Err != nil {
				return 0, r.Err
			}
			if len(r.Tokens) != cfg.NewTokens {
				return 0, fmt.Errorf("serve.Measure: %s generated %d tokens, want %d", k.method, len(r.Tokens), cfg.NewTokens)
			}
		}
		return d, nil
	}
	cfg.Progress(fmt.Sprintf("compiling: %d points", len(keys)))
	for _, k := range keys { // warm-up: compile every shape
		if _, err := run(k); err != nil {
			return nil, err
		}
	}
	// Every timed run of a method follows a run of the bare base: the ratio of the pair
	// cancels the slow drifts of a shared machine, and the median over the rounds the rest.
	times, cpus := map[key][]time.Duration{}, map[key][]time.Duration{}
	ratios, cpuRatios := map[key][]float64{}, map[key][]float64{}
	baseKey := key{MethodBase, 1}
	before := e.Compiles()
	for r := range cfg.Repeats {
		cfg.Progress(fmt.Sprintf("timing: round %d of %d", r+1, cfg.Repeats))
		for _, k := range keys {
			if k == baseKey {
				continue
			}
			tb, err := run(baseKey)
			if err != nil {
				return nil, err
			}
			cb := cpu
			times[baseKey], cpus[baseKey] = append(times[baseKey], tb), append(cpus[baseKey], cb)
			d, err := run(k)
			if err != nil {
				return nil, err
			}
			times[k], cpus[k] = append(times[k], d), append(cpus[k], cpu)
			ratios[k] = append(ratios[k], d.Seconds()/tb.Seconds())
			if cb > 0 {
				cpuRatios[k] = append(cpuRatios[k], cpu.Seconds()/cb.Seconds())
			}
		}
	}
	m.Compiles = e.Compiles() - before
	for _, k := range keys {
		ts := times[k]
		if len(ts) == 0 { // the base alone was asked for
			for range cfg.Repeats {
				d, err := run(k)
				if err != nil {
					return nil, err
				}
				times[k], cpus[k] = append(times[k], d), append(cpus[k], cpu)
			}
			ts = times[k]
		}
		med := median(ts)
		p := Point{Method: k.method, K: k.k, BatchMS: msOf(med), MinMS: msOf(slices.Min(ts)),
			TokensPerSecond: float64(cfg.Batch*cfg.NewTokens) / med.Seconds(), CPUMS: msOf(median(cpus[k])), VsBase: 1, VsBaseCPU: 1}
		if k != baseKey {
			p.VsBase, p.VsBaseCPU = medianF(ratios[k]), medianF(cpuRatios[k])
		}
		m.Points = append(m.Points, p)
	}
	if err := m.measureMemory(cfg, filepath.Join(dir, "memory")); err != nil {
		return nil, err
	}
	return m, nil
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// medianF is the median of xs (0 for none).
func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// median of durations (the mean of the middle two for an even count).
func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measureMemory loads N tasks of each method into a fresh engine and records their bytes.
func (m *Measurement) measureMemory(cfg MeasureConfig, dir string) error {
	if len(cfg.MemoryNs) == 0 {
		return nil
	}
	nmax := slices.Max(cfg.MemoryNs)
	ns := slices.Clone(cfg.MemoryNs)
	sort.Ints(ns)
	for mi, method := range cfg.Methods {
		mc, opts, ok := cfg.methodConfig(method)
		if !ok {
			continue
		}
		cfg.Progress(fmt.Sprintf("memory: %d tasks of %s", nmax, method))
		// One file per method is enough: the same adapter loads under N names.
		d := filepath.Join(dir, fmt.Sprint(mi))
		if err := SyntheticAdapter(d, cfg.Base, "task", mc, uint64(mi+1)); err != nil {
			return err
		}
		res, err := mc.Resolve(cfg.Base.Config.Layout())
		if err != nil {
			return err
		}
		var perTask int64
		switch {
		case opts.Merge: // a merged copy of every adapted weight matrix
			for _, s := range res.Sites {
				perTask += int64(4 * s.In * s.Out)
			}
		default:
			perTask = int64(4 * params(res))
		}
		e, err := New(cfg.Base, Options{Backend: cfg.Backend})
		if err != nil {
			return err
		}
		heap0 := heapBytes()
		loaded := 0
		for _, n := range ns {
			for ; loaded < n; loaded++ {
				if _, err := e.LoadWith(fmt.Sprintf("task%d", loaded), d, opts); err != nil {
					return err
				}
			}
			h := heapBytes() - heap0
			m.Memory = append(m.Memory, MemoryRow{Method: method, N: n, ParamBytes: perTask * int64(n), HeapBytes: h,
				VsBaseCopy: float64(perTask*int64(n)) / float64(m.BaseBytes), HeapVsBaseCopy: float64(h) / float64(m.BaseBytes)})
		}
		runtime.KeepAlive(e)
	}
	return nil
}

func heapBytes() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// Machine describes this machine for result tables: CPU model, cores, and the backend
// (with its matrix-product path).
func Machine() string {
	return fmt.Sprintf("%s, %d cores, %s", backend.CPU(), runtime.NumCPU(), backend.Describe())
}

// TimeTable is the timing as a table: one row per method and K.
func (m *Measurement) TimeTable() (header []string, rows [][]string) {
	header = []string{"method", "K tasks", "batch (ms)", "tokens/s", "× base", "CPU (ms)", "CPU × base"}
	for _, p := range m.Points {
		rows = append(rows, []string{p.Method, fmt.Sprint(p.K), fmt.Sprintf("%.1f", p.BatchMS), fmt.Sprintf("%.0f", p.TokensPerSecond),
			fmt.Sprintf("%.2f", p.VsBase), fmt.Sprintf("%.1f", p.CPUMS), fmt.Sprintf("%.2f", p.VsBaseCPU)})
	}
	return header, rows
}

// MemoryTable is the memory as a table: one row per method and N.
func (m *Measurement) MemoryTable() (header []string, rows [][]string) {
	header = []string{"method", "N tasks", "task weights (KiB)", "% of a base copy", "heap grown (KiB)", "heap % of a base copy"}
	for _, r := range m.Memory {
		rows = append(rows, []string{r.Method, fmt.Sprint(r.N), fmt.Sprintf("%.1f", float64(r.ParamBytes)/1024),
			fmt.Sprintf("%.1f", 100*r.VsBaseCopy), fmt.Sprintf("%.1f", float64(r.HeapBytes)/1024), fmt.Sprintf("%.1f", 100*r.HeapVsBaseCopy)})
	}
	return header, rows
}

// Target is one of the targets, checked on a measurement.
type Target struct {
	What  string `json:"what"`
	Value string `json:"value"`
	Bar   string `json:"bar"`
	Met   bool   `json:"met"`
	// Known is false when the measurement lacks the points to check it.
	Known bool `json:"known"`
}

// Targets checks the serving targets: AdaLink's fully mixed batch against the bare base
// (at most 1.05x), LoRA's mixed batch against its single-adapter batch (under 2x, Hugging
// Face PEFT's bar), and the memory of 100 AdaLink tasks (under 5% of a base copy). Times
// are compared both on wall time and on CPU time.
func (m *Measurement) Targets() []Target {
	var out []Target
	kmax := 0
	for _, p := range m.Points {
		kmax = max(kmax, p.K)
	}
	_, okB := m.Point(MethodBase, 1)
	ada, okA := m.Point(MethodAdaLink, kmax)
	out = append(out, Target{What: fmt.Sprintf("AdaLink, K = %d distinct tasks in a batch of %d, vs the same batch on the bare base", kmax, m.Batch),
		Bar: "≤ 1.05×", Known: okA && okB,
		Value: fmt.Sprintf("%.3f× wall, %.3f× CPU", ada.VsBase, ada.VsBaseCPU),
		Met:   okA && okB && ada.VsBase <= 1.05 && ada.VsBaseCPU <= 1.05})
	mixed, okM := m.Point(MethodLoRA, kmax)
	single, okS := m.Point(MethodLoRASingle, 1)
	out = append(out, Target{What: fmt.Sprintf("LoRA unmerged, K = %d mixed (gathered), vs the single-adapter batch (peft.New's layers)", kmax),
		Bar: "< 2×", Known: okM && okS,
		Value: fmt.Sprintf("%.3f× wall, %.3f× CPU", mixed.VsBase/single.VsBase, mixed.VsBaseCPU/single.VsBaseCPU),
		Met:   okM && okS && mixed.VsBase/single.VsBase < 2 && mixed.VsBaseCPU/single.VsBaseCPU < 2})
	nmax := 0
	for _, r := range m.Memory {
		nmax = max(nmax, r.N)
	}
	mem, okMem := m.Mem(MethodAdaLink, nmax)
	var others []string
	for _, method := range []string{MethodLoRA, MethodLoRAMerged, MethodFT} {
		if r, ok := m.Mem(method, nmax); ok {
			others = append(others, fmt.Sprintf("%s %.1f%%", method, 100*r.VsBaseCopy))
		}
	}
	out = append(out, Target{What: fmt.Sprintf("memory of N = %d AdaLink tasks (r = %d), vs one extra copy of the base", nmax, m.Rank),
		Bar: "< 5%", Known: okMem,
		Value: fmt.Sprintf("%.1f%% in weights, %.1f%% heap (beside it: %s)", 100*mem.VsBaseCopy, 100*mem.HeapVsBaseCopy, strings.Join(others, ", ")),
		Met:   okMem && mem.VsBaseCopy < 0.05})
	return out
}
