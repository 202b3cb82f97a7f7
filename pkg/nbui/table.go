package nbui

import (
	"fmt"
	"html"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/janpfeifer/gonb/gonbui"
)

// Table shows a table in the notebook cell, e.g. a trainable-parameter plan
// (nbui.Table(plan.Header(), plan.Table())) or a results table. Every cell is escaped, so any
// text is safe to show. Outside a notebook it prints the table as aligned text to stdout.
func Table(header []string, rows [][]string) {
	if !gonbui.IsNotebook {
		WriteTableText(os.Stdout, header, rows)
		return
	}
	gonbui.DisplayHTML(TableHTML(header, rows))
	gonbui.Sync()
}

// TableHTML returns the table as HTML, every cell escaped. Rows shorter than the header are
// padded with empty cells. Cells that read as numbers (e.g. "1024", "0.42", "12.5%") are
// right-aligned so that digits line up; text is left-aligned.
func TableHTML(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString(`<table style="border-collapse:collapse;font-variant-numeric:tabular-nums">` + "\n")
	if len(header) > 0 {
		b.WriteString("<thead><tr>")
		for _, h := range header {
			fmt.Fprintf(&b, `<th style="text-align:left;padding:2px 10px;border-bottom:1px solid #999">%s</th>`, html.EscapeString(h))
		}
		b.WriteString("</tr></thead>\n")
	}
	b.WriteString("<tbody>\n")
	for _, r := range rows {
		b.WriteString("<tr>")
		for i := range max(len(r), len(header)) {
			cell := ""
			if i < len(r) {
				cell = r[i]
			}
			align := "left"
			if isNumber(cell) {
				align = "right"
			}
			fmt.Fprintf(&b, `<td style="text-align:%s;padding:2px 10px">%s</td>`, align, html.EscapeString(cell))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</tbody>\n</table>\n")
	return b.String()
}

// WriteTableText writes the table as aligned plain text (what Table prints outside a notebook).
func WriteTableText(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			// Tabs and newlines inside a cell would break the alignment.
			io.WriteString(tw, strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(c))
		}
		io.WriteString(tw, "\n")
	}
	if len(header) > 0 {
		line(header)
	}
	for _, r := range rows {
		line(r)
	}
	tw.Flush()
}

func isNumber(s string) bool {
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	if s == "" {
		return false
	}
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}
