package lab

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/site"
)

// SiteHeader names the columns of SiteRows.
var SiteHeader = []string{"site", "kind", "in", "out", "modality", "count"}

// SiteRows lists the places of a base model where adapters can attach, in the order data
// flows, with the blocks folded together: "block/*/attn/q" stands for the query projection
// of every block, and "count" says how many sites a row stands for. Input sites are where
// AdaLink and prompt tuning work; Linear sites are where LoRA works.
func SiteRows(l site.Layout) [][]string {
	var rows [][]string
	index := map[string]int{}
	for _, s := range l.Sites {
		name := blockIndex.ReplaceAllString(s.Name, "/*/")
		if i, ok := index[name]; ok {
			var n int
			fmt.Sscan(rows[i][5], &n)
			rows[i][5] = fmt.Sprint(n + 1)
			continue
		}
		index[name] = len(rows)
		rows = append(rows, []string{name, s.Kind.String(), fmt.Sprint(s.In), fmt.Sprint(s.Out), s.Modality, "1"})
	}
	return rows
}

// ShowSites shows SiteRows(l) as a table (aligned text outside a notebook).
func ShowSites(l site.Layout) {
	nbui.Table(SiteHeader, SiteRows(l))
}
