package main

import (
	"fmt"
	"io"
	"strings"
)

// print writes the report as a Markdown table (readable in a terminal, and
// pasted as is into the README), the forward check and the ratio line last.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "peftlab bench, %s: %s, %d cores; %s", r.Date, r.CPU, r.Cores, r.Backend)
	if r.Torch != "" {
		fmt.Fprintf(w, "; PyTorch %s, %d threads, OMP_WAIT_POLICY=PASSIVE", r.Torch, r.Threads)
	}
	fmt.Fprintf(w, "; median of %d steps after warm-up; %s\n\n", r.Steps, r.Go)
	fmt.Fprintln(w, "| model | row | peftlab ms | PyTorch ms | ratio | peftlab tok/s | PyTorch tok/s | peftlab GFLOP/s | PyTorch GFLOP/s | peftlab peak MB | PyTorch peak MB |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	var all []pair
	if r.Ceiling != nil {
		all = append(all, *r.Ceiling)
	}
	for _, p := range append(all, r.Rows...) {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", p.Model, rowNames[p.Row],
			ms(p.Ours), ms(p.Peer), ratio(p.Ratio()), tokps(p.Ours, p.Tokens), tokps(p.Peer, p.Tokens),
			gflops(p.Ours, p.FLOPs), gflops(p.Peer, p.FLOPs), mb(p.Ours), mb(p.Peer))
	}
	fmt.Fprintln(w)
	for _, m := range r.Models {
		fmt.Fprintf(w, "- %s: %s (%d weights)\n", m.Config.Name, m.What, m.Weights())
	}
	fmt.Fprintln(w, "- GFLOP/s counts 2·m·n·k per matrix product of the forward pass (element-wise work not counted);"+
		" a FT step is 3× the forward, a LoRA or AdaLink step (frozen base) 2×. Peak MB is the row's process maximum RSS;"+
		" in parentheses the part above the RSS once the backend (peftlab) or torch (PyTorch) was loaded, before the model.")
	for _, p := range r.Rows {
		for _, side := range []*result{p.Ours, p.Peer} {
			if side != nil && side.Error != "" {
				fmt.Fprintf(w, "- %s %s failed: %s\n", p.Model, rowNames[p.Row], side.Error)
			}
		}
	}
	if c := r.Check; c != nil {
		verdict := "ok"
		if !c.OK {
			verdict = "MISMATCH"
		}
		fmt.Fprintf(w, "\nforward check (%s, identical weights and batch): peftlab loss %.7g, PyTorch %.7g, relative difference %.2g (%s; limit 1e-4)\n",
			c.Model, c.Ours, c.Peer, c.Relative, verdict)
	}
	fmt.Fprintln(w, r.ratioLine())
}

// ratioLine is the bench-lm summary: peftlab's step time over PyTorch's.
func (r *report) ratioLine() string {
	var parts []string
	for _, row := range []struct{ key, name string }{{rowFT, "FT"}, {rowLoRA, "LoRA"}, {rowAdaLink, "AdaLink"}} {
		v := "n/a"
		for _, p := range r.Rows {
			if p.Model == "bench-lm" && p.Row == row.key && p.Ratio() > 0 {
				v = fmt.Sprintf("%.2fx", p.Ratio())
			}
		}
		parts = append(parts, row.name+"="+v)
	}
	return "ratio vs pytorch (bench-lm): " + strings.Join(parts, " ")
}

func ms(r *result) string {
	if r == nil {
		return "–"
	}
	if r.Error != "" {
		return "failed"
	}
	return fmt.Sprintf("%.1f", r.MedianMs)
}

func ratio(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2fx", x)
}

func ok(r *result) bool { return r != nil && r.Error == "" && r.MedianMs > 0 }

func tokps(r *result, tokens int) string {
	if !ok(r) || tokens == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(tokens)/(r.MedianMs/1000))
}

func gflops(r *result, flops float64) string {
	if !ok(r) {
		return "–"
	}
	return fmt.Sprintf("%.1f", flops/(r.MedianMs/1000)/1e9)
}

// mb is a row's peak RSS and, in parentheses, how much of it came after the backend or torch
// was loaded (the row's own tensors, graphs and optimizer state).
func mb(r *result) string {
	if r == nil || r.PeakRSS == 0 {
		return "–"
	}
	s := fmt.Sprintf("%.0f", float64(r.PeakRSS)/(1<<20))
	if r.StartRSS > 0 && r.StartRSS <= r.PeakRSS {
		s += fmt.Sprintf(" (+%.0f)", float64(r.PeakRSS-r.StartRSS)/(1<<20))
	}
	return s
}
