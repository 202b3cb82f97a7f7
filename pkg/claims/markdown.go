package claims

import (
	"errors"
	"fmt"
	"strings"
)

// Meta says where the numbers come from.
type Meta struct {
	// Date and Machine say when and where the section was written; Store names where the
	// runs came from and Backend the backends they ran on (runs may come from several
	// machines: cmd/results merges an archive with the store).
	Date, Machine, Backend, Store string
	// Runs counts the full-mode runs in the store.
	Runs int
}

// The markers around the README's results section; Replace writes between them.
const (
	Begin = "<!-- results:begin (written by `make results`: edit pkg/claims, not this section) -->"
	End   = "<!-- results:end -->"
)

// Markdown is the results section: one subsection per claim with its verdict, the numbers
// behind it and how they were compared.
func Markdown(findings []Finding, m Meta) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Numbers from `make results` (written %s on %s; %d full-mode runs from %s, run on %s). Each configuration ran with 3 seeds; "+
		"a score is the mean ± the sample standard deviation over seeds, on the test examples, for the learning rate "+
		"chosen on the validation examples. Two means differ when their difference exceeds twice its standard error; "+
		"a verdict is \"not settled at this scale\" when it does not. These are 0.4M-weight bases trained for a few "+
		"hundred steps on CPUs: the verdicts are about this scale, not about the paper's models.\n\n",
		m.Date, m.Machine, m.Runs, m.Store, m.Backend)
	b.WriteString("| # | the paper's claim | verdict here |\n|---|---|---|\n")
	for _, f := range findings {
		fmt.Fprintf(&b, "| %d | %s | **%s** |\n", f.N, f.Claim, f.Verdict)
	}
	for _, f := range findings {
		fmt.Fprintf(&b, "\n**Claim %d: %s** Verdict: **%s**. %s\n\n", f.N, f.Claim, f.Verdict, f.Note)
		fmt.Fprintf(&b, "| %s |\n|%s\n", strings.Join(f.Header, " | "), strings.Repeat("---|", len(f.Header)))
		for _, r := range f.Rows {
			fmt.Fprintf(&b, "| %s |\n", strings.Join(r, " | "))
		}
		fmt.Fprintf(&b, "\n%s\n", f.How)
	}
	return b.String()
}

// Replace puts section between the markers in doc, which must hold each marker once, in
// order.
func Replace(doc, section string) (string, error) {
	i, j := strings.Index(doc, Begin), strings.Index(doc, End)
	if i < 0 || j < 0 || j < i || strings.Count(doc, Begin) != 1 || strings.Count(doc, End) != 1 {
		return "", errors.New("the README must hold the results markers once each, in order:\n" + Begin + "\n" + End)
	}
	return doc[:i+len(Begin)] + "\n" + section + doc[j:], nil
}
