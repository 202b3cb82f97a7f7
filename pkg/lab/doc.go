// Package lab is where a researcher runs experiments: it trains and scores adapters on a
// base, keeps every run in a store on disk so that notebook cells compose, runs ablation
// grids in one call, and shows plans, progress, curves, tables and charts.
//
// An Experiment names a base, a task with its split sizes, a budget, a seed and the methods
// trained together; its recipe (AdamW, warmup, cosine decay, evaluation five times) is the
// same for every method, so they compare on equal terms. Run returns the stored run when the
// store has it, in a fraction of a second, and otherwise trains it with a live progress
// display, scores it by generation with the task's metric (package eval) and stores it:
//
//	x := lab.Experiment{Base: bases.Text, Task: "spam", Steps: 300, Test: 300, LR: 1e-1,
//		Methods: []peft.Method{adalink.Config{Rank: 8}}}
//	r, err := x.Run()
//	lab.Check(err)
//	r.Show()
//
// A Grid runs an experiment over axes (Ranks, Placements, Targets, Variants, Seeds, LRs) with
// a time budget, so a cell stops before the notebook runner's limit and the next run of the
// cell continues; a learning-rate sweep (Grid.LRs, Experiment.Sweep) chooses on validation and
// scores the test split once:
//
//	g := lab.Grid{Experiment: x, Axes: []lab.Axis{lab.Ranks(1, 8, 64), lab.Seeds(1, 2, 3)}}
//	res, err := g.Run()
//	lab.Check(err)
//	res.ShowHeatmap("spam: test accuracy (%)", "rank", "seed")
//	res.ShowTable()
//
// The Store (DefaultStore: runs/ beside the notebook, or $PEFTLAB_RUNS) is safe against killed
// kernels and shared by concurrent ones; see Store. Summaries (List) are small, for listings,
// tables (mean ± spread over seeds), Pareto charts and CSV/JSON export.
//
// Package nbui stays generic (charts, tables, progress) and knows nothing of training; lab
// knows both. Everything works outside a notebook too (tables print as text, progress as a
// few lines, charts are skipped), so notebook code is tested as ordinary Go.
package lab
