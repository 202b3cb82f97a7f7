// Package lab is the glue between training and the notebook: it shows a peft.Plan as a
// table, attaches a live progress display to a trainer.Trainer, draws the loss curves of one
// or several runs as one chart and tabulates results. Scoring a model on a task by
// generating its answers is package eval's (eval.Generator).
//
// It sits at the top of peftlab's stack: package nbui stays generic (charts, tables,
// progress) and knows nothing of training; lab knows both. Everything works outside a notebook
// too (tables print as text, progress as a few lines, charts are skipped), so the notebook
// code is tested as ordinary Go.
//
// A notebook cell that trains and shows a run:
//
//	pm, _ := peft.New(base.Layout(), peft.Adapter{Name: "imdb", Method: adalink.Config{Rank: 4}})
//	lab.ShowPlan(pm.Plan())
//	tr, _ := trainer.New(b, ctx, base, pm, trainer.Config{Steps: 200, BatchSize: 16, LR: 1e-3})
//	run, err := lab.Train(tr, src, "AdaLink r=4")
//	if err != nil { panic(err) }
//	run.Metric, run.Score, _, err = eval.Generator{Backend: b, Ctx: ctx, Base: base, Hook: pm,
//		Tokenizer: tok, Source: src}.Score(task, task.Test)
//	lab.ShowCurves("IMDB", run)
//	lab.ShowResults(run)
//
// Runs are plain data (a trainer.Record plus a name and a score): SaveRuns and LoadRuns keep
// them between cells, which GoNB runs as separate programs.
package lab
