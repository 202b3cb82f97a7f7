package lab

import (
	"fmt"
	"html"
	"os"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/peftlab/peftlab/pkg/nbui"
)

// Check ends a notebook cell on an error with the error's message, shown as a sentence (in
// red in a notebook, on stderr as "error: ..."), and exit status 1, which the notebook
// runner reports as a failed cell. It is the one line of error handling a cell needs:
//
//	r, err := x.Run()
//	lab.Check(err)
func Check(err error) {
	if err == nil {
		return
	}
	if gonbui.IsNotebook {
		gonbui.DisplayHTML(`<p style="color:#b00020"><b>error:</b> ` + html.EscapeString(err.Error()) + `</p>`)
		gonbui.Sync()
	}
	fmt.Fprintln(os.Stderr, "error:", err)
	os.Exit(1)
}

// Show shows a run: where it came from (trained now, or the store), its plan row, its loss
// curves and its scores.
func (r Run) Show() {
	if r.Reused {
		when := ""
		if r.Record != nil && !r.Record.Finished.IsZero() {
			when = ", trained " + r.Record.Finished.Local().Format("2006-01-02 15:04")
		}
		fmt.Printf("%s: from the store (%s%s)\n", r.Name, r.ID, when)
	}
	if len(r.Plan) > 0 {
		nbui.Table(PlanHeader, [][]string{r.Plan})
	}
	if r.Record != nil {
		_ = ShowCurves(r.Name+": training loss (solid), validation loss (dashed)", r)
	}
	ShowTable([]Summary{r.Summary()})
	if r.State == Failed {
		fmt.Printf("%s failed: %s\n", r.Name, r.Error)
	}
}

// ShowTable shows Table(sums) (aligned text outside a notebook).
func ShowTable(sums []Summary) {
	nbui.Table(Table(sums))
}

// ShowTable shows the grid's results table, mean ± spread over seeds.
func (g *GridResult) ShowTable() { ShowTable(g.Summaries()) }

// ShowHeatmap shows the grid's test scores over two of its axes (see Heatmap).
func (g *GridResult) ShowHeatmap(title, x, y string) error {
	return nbui.Show(Heatmap(title, g.Summaries(), x, y))
}

// ShowPareto shows the grid's test scores against trainable parameters (see ParetoChart).
func (g *GridResult) ShowPareto(title string) error {
	return nbui.Show(ParetoChart(title, g.Summaries()))
}

// ShowCurves overlays the loss curves of the grid's runs.
func (g *GridResult) ShowCurves(title string) error {
	runs := make([]Run, len(g.Runs))
	for i, r := range g.Runs {
		runs[i] = r
		if len(r.Point) > 0 {
			runs[i].Name = pointKey(r.Point)
		}
	}
	return ShowCurves(title, runs...)
}
