package peft

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/peftlab/peftlab/pkg/site"
)

// Plan is the dry run of attaching adapters: which weights train, where, and
// how many, before anything is built. Show it as text (String) or as a table
// (Header and Rows, e.g. with nbui.Table in a notebook).
type Plan struct {
	Model string
	Rows  []PlanRow
	// Trainable counts the scalars that train; Frozen the rest of the base and
	// of frozen adapters; Total is their sum.
	Trainable, Frozen, Total int
}

// PlanRow is one weight an adapter trains or adds.
type PlanRow struct {
	Adapter, Method string
	// Site is the site the weight belongs to, or "" for weights not tied to one site.
	Site  string
	Param site.Param
	// Trains is false for weights of frozen adapters.
	Trains bool
	// Base is true when the weight is a base weight the adapter unfreezes.
	Base bool
}

// Plan lists every weight the adapters add or unfreeze, and the counts.
func (m *Model) Plan() Plan {
	p := Plan{Model: m.Layout.Model}
	base := m.Layout.NumParams()
	added := 0
	for _, a := range m.adapters {
		for _, prm := range a.res.New {
			full := prm
			full.Name = a.Scope() + "/" + prm.Name
			p.Rows = append(p.Rows, PlanRow{Adapter: a.Name, Method: a.Method.Type(), Site: siteOf(a.res.Sites, prm.Name),
				Param: full, Trains: !a.Frozen})
			added += prm.Size()
			if !a.Frozen {
				p.Trainable += prm.Size()
			}
		}
		for _, prm := range a.res.Base {
			p.Rows = append(p.Rows, PlanRow{Adapter: a.Name, Method: a.Method.Type(), Site: siteOf(m.Layout.Sites, strings.TrimPrefix(prm.Name, "/")),
				Param: prm, Trains: !a.Frozen, Base: true})
			if !a.Frozen {
				p.Trainable += prm.Size()
			}
		}
	}
	p.Total = base + added
	p.Frozen = p.Total - p.Trainable
	return p
}

// siteOf returns the longest site name that prefixes the relative param name.
func siteOf(sites []site.Site, relName string) string {
	best := ""
	for _, s := range sites {
		if strings.HasPrefix(relName, s.Name+"/") && len(s.Name) > len(best) {
			best = s.Name
		}
	}
	return best
}

// Percent is the trainable share of all weights, in percent.
func (p Plan) Percent() float64 {
	if p.Total == 0 {
		return 0
	}
	return 100 * float64(p.Trainable) / float64(p.Total)
}

// Header returns the column names of Rows.
func (p Plan) Header() []string {
	return []string{"adapter", "method", "site", "weight", "shape", "params", "trains"}
}

// Table returns one row of strings per weight, followed by a totals row.
func (p Plan) Table() [][]string {
	rows := make([][]string, 0, len(p.Rows)+1)
	for _, r := range p.Rows {
		trains := "yes"
		if !r.Trains {
			trains = "no (frozen)"
		}
		rows = append(rows, []string{r.Adapter, r.Method, r.Site, r.Param.Name, fmt.Sprint(r.Param.Shape),
			fmt.Sprint(r.Param.Size()), trains})
	}
	rows = append(rows, []string{"total", "", "", "", "", fmt.Sprint(p.Total), p.Summary()})
	return rows
}

// Summary is the one-line report PEFT users know from print_trainable_parameters.
func (p Plan) Summary() string {
	return fmt.Sprintf("trainable params: %d || all params: %d || trainable%%: %.4f", p.Trainable, p.Total, p.Percent())
}

// String renders the plan as an aligned text table.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for %s\n", p.Model)
	w := tabwriter.NewWriter(&b, 0, 2, 2, ' ', 0)
	fmt.Fprintln(w, strings.Join(p.Header(), "\t"))
	for _, r := range p.Table()[:len(p.Rows)] {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
	b.WriteString(p.Summary())
	b.WriteByte('\n')
	return b.String()
}
