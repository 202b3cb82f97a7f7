package site

import (
	"fmt"
	"path"
	"strings"
)

// Pattern selects sites or parameters by name. It is a path.Match glob where
// "*" matches within one path segment, extended with brace alternation:
//
//	block/*/attn/{q,v}   the query and value projections of every block
//	input/*              every modality's input embeddings
//	block/1/**           everything under block 1 ("**" matches any number of segments)
type Pattern string

// expand returns the pattern with every {a,b,...} group expanded, failing on
// unbalanced or nested braces and on more than maxAlternatives results.
func (p Pattern) expand() ([]string, error) {
	s := string(p)
	alts := []string{""}
	for {
		open := strings.IndexByte(s, '{')
		if open < 0 {
			if strings.IndexByte(s, '}') >= 0 {
				return nil, fmt.Errorf("pattern %q: '}' without '{'", string(p))
			}
			break
		}
		end := strings.IndexByte(s[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("pattern %q: '{' without '}'", string(p))
		}
		end += open
		group := s[open+1 : end]
		if strings.ContainsAny(s[:open], "}") || strings.ContainsAny(group, "{") {
			return nil, fmt.Errorf("pattern %q: unbalanced or nested braces", string(p))
		}
		choices := strings.Split(group, ",")
		if len(alts)*len(choices) > maxAlternatives {
			return nil, fmt.Errorf("pattern %q expands to more than %d alternatives", string(p), maxAlternatives)
		}
		next := make([]string, 0, len(alts)*len(choices))
		for _, a := range alts {
			for _, c := range choices {
				next = append(next, a+s[:open]+c)
			}
		}
		alts, s = next, s[end+1:]
	}
	for i := range alts {
		alts[i] += s
	}
	return alts, nil
}

// Validate reports a syntax error in the pattern.
func (p Pattern) Validate() error {
	alts, err := p.expand()
	if err != nil {
		return err
	}
	for _, a := range alts {
		if _, err := path.Match(strings.ReplaceAll(a, "**", "*"), ""); err != nil {
			return fmt.Errorf("pattern %q: %w", string(p), err)
		}
	}
	return nil
}

// maxAlternatives bounds brace expansion, so a hostile pattern (one read from
// an adapter file, say) cannot make matching explode.
const maxAlternatives = 1024

// Match reports whether name (with or without a leading "/") matches the pattern.
// An invalid pattern matches nothing; call Validate to report it.
func (p Pattern) Match(name string) bool {
	name = strings.TrimPrefix(name, "/")
	alts, err := p.expand()
	if err != nil {
		return false
	}
	nameSegs := strings.Split(name, "/")
	for _, a := range alts {
		if matchSegments(compactGlobstars(strings.Split(strings.TrimPrefix(a, "/"), "/")), nameSegs) {
			return true
		}
	}
	return false
}

// compactGlobstars merges runs of "**", which match the same as one.
func compactGlobstars(pat []string) []string {
	out := pat[:0:0]
	for _, seg := range pat {
		if seg == "**" && len(out) > 0 && out[len(out)-1] == "**" {
			continue
		}
		out = append(out, seg)
	}
	return out
}

// matchSegments matches pattern segments against name segments by dynamic
// programming over (pattern, name) positions: O(len(pat)·len(name)) steps
// whatever the number of "**", where plain backtracking is exponential.
func matchSegments(pat, name []string) bool {
	// ok[j] reports whether pat[i:] matches name[j:], filled from i = len(pat) down.
	ok := make([]bool, len(name)+1)
	ok[len(name)] = true
	next := make([]bool, len(name)+1)
	for i := len(pat) - 1; i >= 0; i-- {
		for j := len(name); j >= 0; j-- {
			switch {
			case pat[i] == "**":
				// Match zero segments (ok[j]) or one more (next[j+1]).
				next[j] = ok[j] || (j < len(name) && next[j+1])
			case j == len(name):
				next[j] = false
			default:
				m, err := path.Match(pat[i], name[j])
				next[j] = err == nil && m && ok[j+1]
			}
		}
		ok, next = next, ok
	}
	return ok[0]
}

// Select returns the sites matched by any of the patterns, in layout order.
// It fails when a pattern is malformed or matches no site at all, listing the
// sites that exist, since a silent empty match is the most common PEFT mistake.
func (l Layout) Select(patterns ...Pattern) ([]Site, error) {
	if len(patterns) == 0 {
		return nil, fmt.Errorf("no target pattern given; sites of %s: %s", l.Model, l.siteNames())
	}
	matched := make([]bool, len(l.Sites))
	for _, p := range patterns {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		any := false
		for i, s := range l.Sites {
			if p.Match(s.Name) {
				matched[i], any = true, true
			}
		}
		if !any {
			return nil, fmt.Errorf("pattern %q matches no site of %s; its sites are: %s", string(p), l.Model, l.siteNames())
		}
	}
	var out []Site
	for i, s := range l.Sites {
		if matched[i] {
			out = append(out, s)
		}
	}
	return out, nil
}

// SelectParams returns the base parameters matched by any of the patterns, in
// layout order, failing like Select when a pattern matches nothing.
func (l Layout) SelectParams(patterns ...Pattern) ([]Param, error) {
	matched := make([]bool, len(l.Params))
	for _, p := range patterns {
		if err := p.Validate(); err != nil {
			return nil, err
		}
		any := false
		for i, prm := range l.Params {
			if p.Match(prm.Name) {
				matched[i], any = true, true
			}
		}
		if !any {
			return nil, fmt.Errorf("pattern %q matches no weight of %s (weights look like %q)", string(p), l.Model, l.Params[0].Name)
		}
	}
	var out []Param
	for i, prm := range l.Params {
		if matched[i] {
			out = append(out, prm)
		}
	}
	return out, nil
}

func (l Layout) siteNames() string {
	names := make([]string, len(l.Sites))
	for i, s := range l.Sites {
		names[i] = s.Name
	}
	const max = 24
	if len(names) > max {
		return strings.Join(names[:max], ", ") + fmt.Sprintf(", ... (%d in all)", len(names))
	}
	return strings.Join(names, ", ")
}
