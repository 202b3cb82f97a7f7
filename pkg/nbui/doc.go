// Package nbui shows results in a GoNB notebook: go-echarts charts that render offline, HTML
// tables, and a live progress display for long loops.
//
// Charts carry the ECharts JavaScript inline in the cell output instead of loading it from a CDN,
// so they render with no network: in the classic Notebook, JupyterLab, VS Code, nbconvert's HTML
// export and saved reports. The script comes from the npm package echarts@5.6.0, installed once
// into the lab directory by InstallECharts (`go run ./kernel install` calls it); it is not
// committed to the repository.
//
//	nbui.Show(nbui.Line("loss", nbui.Axes{X: "step", Y: "loss"}, nbui.Series{Name: "train", Y: losses}))
//	nbui.Table(plan.Header(), plan.Table())
//	p := nbui.NewProgress("training", steps)
//	for step := range steps { ...; p.Update(step+1, fmt.Sprintf("loss %.3f", loss)) }
//	p.Done()
//
// Everything also works outside a notebook, so library code can call it: Show does nothing,
// Table prints an aligned text table and Progress prints a few text lines.
package nbui
