// Command pretrain makes peftlab's base models and shows their held-out scores.
//
//	go run ./cmd/pretrain -base text|vlm-raw|vlm-instruct|all [-out dir] [-steps N] [-fast]
//	go run ./cmd/pretrain -report [-samples] [-html dir] [-out dir]
//
// Pretraining follows the fixed recipes of pkg/pretrain (architecture, data, steps, seed), so a
// run remakes the shipped checkpoint: by default it writes pkg/bases/<base> (run it from the
// repository root), replacing the old checkpoint only once the new one is complete and
// verifies. -steps and -fast make shorter runs for trying things out; write those elsewhere
// with -out.
//
// -report prints each shipped base's size, training cost and held-out scores from its
// report.json, after verifying every checkpoint (file hashes and peft.BaseHash); with -out it
// reports on the checkpoint in that directory instead. -samples adds a few of each base's
// generations on held-out inputs; -html dir writes each base's loss curve as an HTML chart
// (needs the ECharts script: go run ./kernel install).
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/pretrain"
	"github.com/peftlab/peftlab/pkg/tokenizer"
)

func main() {
	base := flag.String("base", "", "base to pretrain: "+strings.Join(pretrain.Names(), ", ")+" or all")
	out := flag.String("out", "", "checkpoint directory (default pkg/bases/<base>; with several bases, <out>/<base>)")
	steps := flag.Int("steps", 0, "number of training steps (default: the recipe's)")
	fast := flag.Bool("fast", false, "use the fast data subsets (a smoke run; write it elsewhere with -out)")
	evalN := flag.Int("eval", 200, "test examples per task scored after pretraining")
	report := flag.Bool("report", false, "print the held-out scores of the shipped bases (or of -out) and verify them")
	html := flag.String("html", "", "with -report: write each base's loss curve to <dir>/<base>.html")
	samples := flag.Bool("samples", false, "with -report: also print a few generations of each base on held-out inputs")
	flag.Parse()
	var err error
	switch {
	case *report:
		err = showReports(*out, *html, *samples)
	case *base != "":
		err = pretrainBases(*base, *out, *steps, *fast, *evalN)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pretrain:", err)
		os.Exit(1)
	}
}

func pretrainBases(base, out string, steps int, fast bool, evalN int) error {
	names := []string{base}
	if base == "all" {
		names = pretrain.Names()
	}
	var recipes []pretrain.Recipe
	for _, n := range names {
		r, err := pretrain.RecipeFor(n)
		if err != nil {
			return err
		}
		recipes = append(recipes, r)
	}
	if out == "" {
		if _, err := os.Stat(filepath.Join("pkg", "bases", "bases.go")); err != nil {
			return errors.New("run from the repository root to update pkg/bases, or choose a directory with -out")
		}
		if fast || steps > 0 {
			return errors.New("-fast and -steps make trial bases: write them elsewhere with -out, not over the shipped ones")
		}
		out = filepath.Join("pkg", "bases")
		base = "all" // one directory per base below out
	}
	b, err := backend.New()
	if err != nil {
		return err
	}
	var tok *tokenizer.Tokenizer
	for _, r := range recipes {
		dir := out
		if base == "all" {
			dir = filepath.Join(out, r.Name)
		}
		cmd := "go run ./cmd/pretrain -base " + r.Name
		if steps > 0 {
			cmd += fmt.Sprintf(" -steps %d", steps)
		}
		if fast {
			cmd += " -fast"
		}
		rep, err := pretrain.Run(b, r, pretrain.Options{Out: dir, Steps: steps, Fast: fast, EvalExamples: evalN,
			Tokenizer: tok, Log: os.Stderr, Command: cmd})
		if err != nil {
			return err
		}
		if tok == nil { // reuse the shared vocabulary for the next bases of this run
			if tok, err = tokenizer.Load(filepath.Join(dir, bases.TokenizerFile)); err != nil {
				return err
			}
		}
		fmt.Printf("%s: %d weights, %.1f min (%.2f s/step), base hash %s\n", r.Name, rep.Params, rep.TrainMinutes, rep.MedianStepSeconds, rep.BaseHash)
	}
	return nil
}

// showReports prints the bases' summaries and held-out scores, verifying each checkpoint.
func showReports(dir, htmlDir string, samples bool) error {
	type entry struct {
		name     string
		r        *bases.Report
		verified error
	}
	var entries []entry
	if dir != "" {
		r, err := bases.ReadReport(dir)
		if err != nil {
			return err
		}
		_, verr := bases.LoadDir(dir)
		entries = append(entries, entry{r.Name, r, verr})
	} else {
		for _, n := range bases.Names() {
			r, err := bases.ShippedReport(n)
			if err != nil {
				return err
			}
			_, verr := bases.Load(n)
			entries = append(entries, entry{n, r, verr})
		}
	}
	var summary, scores [][]string
	failed := 0
	for _, e := range entries {
		status := "verified " + shortHash(e.r.BaseHash)
		if e.verified != nil {
			status = "DAMAGED"
			failed++
		}
		t := e.r.Training
		summary = append(summary, []string{e.name, fmt.Sprint(e.r.Params), fmt.Sprintf("%d x %d", t.Config.Steps, t.Config.BatchSize),
			fmt.Sprintf("%.1f", e.r.TrainMinutes), fmt.Sprintf("%.2f", e.r.MedianStepSeconds), status})
		for _, s := range e.r.HeldOut {
			seen := "held-out task"
			if s.Seen {
				seen = "pretrained on"
			}
			if s.Metric == "perplexity" {
				seen = "held-out text"
			}
			scores = append(scores, []string{e.name, s.Task, s.Metric, fmt.Sprintf("%.3f", s.Value), fmt.Sprint(s.N), seen})
		}
		if htmlDir != "" {
			if err := os.MkdirAll(htmlDir, 0o755); err != nil {
				return err
			}
			path := filepath.Join(htmlDir, e.name+".html")
			if err := nbui.WriteHTML(path, "pretraining "+e.name, pretrain.LossChart(e.r)); err != nil {
				return err
			}
			fmt.Println("wrote", path)
		}
	}
	nbui.WriteTableText(os.Stdout, []string{"base", "params", "steps x batch", "train min", "s/step", "identity"}, summary)
	fmt.Println()
	nbui.WriteTableText(os.Stdout, []string{"base", "task", "metric", "value", "n", "test split of"}, scores)
	if samples {
		var rows [][]string
		for _, e := range entries {
			for _, s := range e.r.Samples {
				rows = append(rows, []string{e.name, s.Task, clip(s.Prompt, 48), s.Target, clip(s.Output, 60)})
			}
		}
		fmt.Println()
		nbui.WriteTableText(os.Stdout, []string{"base", "task", "prompt", "target", "generated"}, rows)
	}
	for _, e := range entries {
		if e.verified != nil {
			fmt.Fprintln(os.Stderr, e.verified)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d checkpoint(s) failed verification", failed)
	}
	return nil
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// clip shortens s to n characters for a table cell.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
