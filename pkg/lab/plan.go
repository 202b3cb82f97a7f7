package lab

import (
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/peft"
)

// ShowPlan shows which weights the adapters of a plan add or unfreeze, one row per weight,
// ending with PEFT's print_trainable_parameters line. Outside a notebook it prints the same
// as text.
func ShowPlan(p peft.Plan) {
	if !gonbui.IsNotebook {
		fmt.Print(p.String())
		return
	}
	// One output block: GoNB forwards printed text and displayed HTML separately, so a title
	// printed before a table may show up after it.
	gonbui.DisplayHTML("<p><b>plan for " + html.EscapeString(p.Model) + "</b></p>\n" + nbui.TableHTML(p.Header(), p.Table()))
	gonbui.Sync()
}

// PlanHeader names the columns of PlanRow.
var PlanHeader = []string{"name", "method", "where", "weights", "trainable", "of all"}

// PlanRow sums up what the adapters of m would train in one row, so several configurations
// (methods, placements, ranks) compare side by side in one table:
//
//	rows = append(rows, lab.PlanRow("LoRA q,v", pm))
//	...
//	nbui.Table(lab.PlanHeader, rows)
//
// "where" lists the sites the adapters run at, and the places of the base weights they
// unfreeze, with block numbers collapsed ("block/*/attn/q"); "weights" counts the weight
// tensors that train or are added, "trainable" the scalars that train and "of all" their
// share of every weight, adapters included.
func PlanRow(name string, m *peft.Model) []string {
	p := m.Plan()
	var methods, where []string
	add := func(list *[]string, s string) {
		if !slices.Contains(*list, s) {
			*list = append(*list, s)
		}
	}
	for _, a := range m.Adapters() {
		add(&methods, a.Method.Type())
		res, _ := m.Resolution(a.Name)
		for _, s := range res.Sites {
			add(&where, blockIndex.ReplaceAllString(s.Name, "/*/"))
		}
	}
	for _, r := range p.Rows {
		if !r.Base {
			continue
		}
		w := r.Site
		if w == "" { // a base weight of no site (an embedding table, a LayerNorm): its scope
			w = strings.TrimPrefix(r.Param.Name, "/")
			if i := strings.LastIndex(w, "/"); i > 0 {
				w = w[:i]
			}
		}
		add(&where, blockIndex.ReplaceAllString(w, "/*/"))
	}
	return []string{name, strings.Join(methods, "+"), elide(where, 4), fmt.Sprint(len(p.Rows)),
		fmt.Sprint(p.Trainable), percent(p.Trainable, p.Total)}
}

// blockIndex matches a block number inside a site or scope name.
var blockIndex = regexp.MustCompile(`/[0-9]+/`)

// elide joins at most max items and says how many more there are.
func elide(items []string, max int) string {
	if len(items) <= max {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:max-1], ", ") + fmt.Sprintf(", … (%d more)", len(items)-max+1)
}

// percent formats part/total as a percentage with enough digits for tiny shares (0.042%).
func percent(part, total int) string {
	if total <= 0 {
		return "–"
	}
	p := 100 * float64(part) / float64(total)
	switch {
	case p == 0 || p >= 10:
		return fmt.Sprintf("%.1f%%", p)
	case p >= 1:
		return fmt.Sprintf("%.2f%%", p)
	default:
		return fmt.Sprintf("%.3g%%", p)
	}
}

// ShowPlans shows what each variant would train on a base, one PlanRow each, without
// training anything: the table to read before a comparison.
func ShowPlans(base string, vs ...Variant) error {
	b, err := bases.Load(base)
	if err != nil {
		return err
	}
	rows := make([][]string, 0, len(vs))
	for _, v := range vs {
		adapters := make([]peft.Adapter, len(v.Methods))
		for i, name := range adapterNames(v.Methods) {
			adapters[i] = peft.Adapter{Name: name, Method: v.Methods[i]}
		}
		m, err := peft.New(b.Config.Layout(), adapters...)
		if err != nil {
			return fmt.Errorf("%s on %s: %w", v.Name, base, err)
		}
		rows = append(rows, PlanRow(v.Name, m))
	}
	nbui.Table(PlanHeader, rows)
	return nil
}
