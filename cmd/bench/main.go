// Command bench is peftlab's reference speed benchmark: training steps of
// FT, LoRA and AdaLink and forward-only inference on four model shapes, each
// row run by peftlab and by a PyTorch peer on the same shapes, batch and
// optimizer, interleaved row by row so that machine noise hits both.
//
//	make bench                         # the whole table (GOEXPERIMENT=simd; installs the peer once if missing)
//	GOEXPERIMENT=simd go run ./cmd/bench -json bench/results.json
//	go run ./cmd/bench -models bench-lm -rows ft,adalink -steps 30
//	go run ./cmd/bench -peer none      # peftlab only
//	go run -tags xla ./cmd/bench -backend xla:cpu   # peftlab on XLA's CPU compiler (make bench-xla)
//	go run ./cmd/bench -json bench.json -cpuprofile ft.prof -models wide -rows ft
//
// Each row runs in a child process of its own (peftlab re-runs this binary
// with -child; the peer is bench/torch/peer.py), so its peak memory (the
// child's maximum resident set) is its own. A row reports the median wall
// time of -steps steps after -warmup untimed ones (the first builds and
// compiles the graph). The last line is the bench-lm ratio line:
//
//	ratio vs pytorch (bench-lm): FT=<x>x LoRA=<y>x AdaLink=<z>x
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/peftlab/peftlab/pkg/backend"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	modelsFlag := fs.String("models", "bench-lm,text,wide,vlm-instruct", "comma-separated reference models")
	rowsFlag := fs.String("rows", "ft,lora,adalink,forward", "comma-separated rows: ft, lora, adalink, forward")
	steps := fs.Int("steps", 20, "timed steps per row (the median is reported; at least 20 for the README's table)")
	warmup := fs.Int("warmup", 3, "untimed steps before timing")
	threads := fs.Int("threads", 2, "threads for the PyTorch peer (peftlab's Go backend uses every core)")
	peerMode := fs.String("peer", "auto", "PyTorch peer: auto (use it, install when missing), none, or require (fail when missing)")
	matmulN := fs.Int("matmul", 1024, "side of the n×n×n float32 product timed as the machine's ceiling (0 = skip)")
	jsonOut := fs.String("json", "", "also write the table as JSON to this file")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of each peftlab row to FILE.<model>.<row> (pprof)")
	child := fs.String("child", "", "internal: run one row described by this JSON spec and print its result")
	timeout := fs.Duration("row-timeout", 0, "kill a row that runs longer than this (0 = 10 minutes); a hang fails loudly")
	backendFlag := fs.String("backend", "", "peftlab's backend for every row, as $GOMLX_BACKEND (default: $GOMLX_BACKEND, else "+
		backend.DefaultConfig+"); "+backend.XLACPU+" is XLA's CPU compiler (build with -tags xla; installs its plugin when missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *child != "" {
		return childMain(*child, *cpuProfile)
	}
	if *steps < 1 || *warmup < 1 {
		return fmt.Errorf("-steps and -warmup must be at least 1 (the first step compiles the graph)")
	}
	var ms []benchModel
	for _, name := range split(*modelsFlag) {
		m, err := findModel(name)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	rows := split(*rowsFlag)
	for _, r := range rows {
		if _, ok := rowNames[r]; !ok || r == rowMatmul {
			return fmt.Errorf("unknown row %q (known: ft, lora, adalink, forward)", r)
		}
	}
	var p *peer
	switch *peerMode {
	case "none":
	case "auto", "require":
		repo, err := repoRoot()
		if err != nil {
			return err
		}
		if p, err = findPeer(repo, *peerMode == "auto"); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-peer must be auto, none or require, got %q", *peerMode)
	}
	if err := useBackend(*backendFlag); err != nil {
		return err
	}
	if !backend.SIMDBuilt() {
		fmt.Fprintln(os.Stderr, "bench: warning: this binary was built without GOEXPERIMENT=simd, so peftlab runs its portable "+
			"matrix-product loops; use `make bench` or `GOEXPERIMENT=simd go run ./cmd/bench`")
	}
	b := &bench{models: ms, rows: rows, steps: *steps, warmup: *warmup, threads: *threads,
		matmulN: *matmulN, peer: p, cpuProfile: *cpuProfile, timeout: *timeout}
	rep, err := b.run()
	if err != nil {
		return err
	}
	rep.print(os.Stdout)
	if *jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// useBackend makes cfg (when set) the backend of this process and of every row's child,
// installs XLA's CPU plugin when cfg asks for it and it is missing (saying so), and checks that
// the backend starts, so that a wrong setting fails before the first row.
func useBackend(cfg string) error {
	if cfg != "" {
		if err := os.Setenv(backend.EnvVar, cfg); err != nil {
			return err
		}
	}
	if cfg := backend.Config(); backend.IsXLACPU(cfg) && os.Getenv("PJRT_PLUGIN_LIBRARY_PATH") == "" {
		logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...) }
		if _, err := backend.InstallXLACPU(logf); err != nil {
			return err
		}
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	b.Finalize()
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
