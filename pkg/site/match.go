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

// expand returns the alternatives of the first {a,b,...} group, recursively.
func (p Pattern) expand() ([]string, error) {
	s := string(p)
	open := strings.IndexByte(s, '{')
	if open < 0 {
		if strings.IndexByte(s, '}') >= 0 {
			return nil, fmt.Errorf("pattern %q: '}' without '{'", s)
		}
		return []string{s}, nil
	}
	end := strings.IndexByte(s[open:], '}')
	if end < 0 {
		return nil, fmt.Errorf("pattern %q: '{' without '}'", s)
	}
	end += open
	var out []string
	for _, alt := range strings.Split(s[open+1:end], ",") {
		rest, err := Pattern(s[:open] + alt + s[end+1:]).expand()
		if err != nil {
			return nil, err
		}
		out = append(out, rest...)
	}
	return out, nil
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

// Match reports whether name (with or without a leading "/") matches the pattern.
// An invalid pattern matches nothing; call Validate to report it.
func (p Pattern) Match(name string) bool {
	name = strings.TrimPrefix(name, "/")
	alts, err := p.expand()
	if err != nil {
		return false
	}
	for _, a := range alts {
		if matchSegments(strings.Split(strings.TrimPrefix(a, "/"), "/"), strings.Split(name, "/")) {
			return true
		}
	}
	return false
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], name[0]); err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
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
