package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// notebook is the part of a Jupyter notebook (nbformat 4) the kernel commands read and write.
// It is only written for notebooks the kernel creates (`new`), so unknown fields may be dropped.
type notebook struct {
	Cells         []cell         `json:"cells"`
	Metadata      map[string]any `json:"metadata"`
	NBFormat      int            `json:"nbformat"`
	NBFormatMinor int            `json:"nbformat_minor"`
}

type cell struct {
	ID             string         `json:"id,omitempty"`
	CellType       string         `json:"cell_type"`
	Metadata       map[string]any `json:"metadata"`
	Source         multiline      `json:"source"`
	ExecutionCount *int           `json:"execution_count,omitempty"`
	Outputs        []output       `json:"outputs,omitempty"`
}

// output is one cell output: a stream (stdout/stderr text), display data, an execute result
// or an error.
type output struct {
	OutputType string                     `json:"output_type"`
	Name       string                     `json:"name,omitempty"` // stream name
	Text       multiline                  `json:"text,omitempty"`
	Data       map[string]json.RawMessage `json:"data,omitempty"`
	Ename      string                     `json:"ename,omitempty"`
	Evalue     string                     `json:"evalue,omitempty"`
	Traceback  []string                   `json:"traceback,omitempty"`
}

// multiline is nbformat's "multiline string": a string or a list of strings to concatenate.
type multiline string

func (m *multiline) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = multiline(s)
		return nil
	}
	var parts []string
	if err := json.Unmarshal(b, &parts); err != nil {
		return fmt.Errorf("want a string or a list of strings: %w", err)
	}
	*m = multiline(strings.Join(parts, ""))
	return nil
}

// MarshalJSON writes the list-of-lines form Jupyter itself writes, which keeps diffs readable.
func (m multiline) MarshalJSON() ([]byte, error) {
	lines := strings.SplitAfter(string(m), "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	if lines == nil {
		lines = []string{}
	}
	return json.Marshal(lines)
}

// tags returns the cell's Jupyter tags (metadata.tags).
func (c cell) tags() []string {
	raw, _ := c.Metadata["tags"].([]any)
	var tags []string
	for _, t := range raw {
		if s, ok := t.(string); ok {
			tags = append(tags, s)
		}
	}
	return tags
}

// MarshalJSON writes what nbformat 4 requires per cell type: code cells always carry
// execution_count (null when not run) and outputs; other cells carry neither.
func (c cell) MarshalJSON() ([]byte, error) {
	m := map[string]any{"cell_type": c.CellType, "metadata": c.Metadata, "source": c.Source}
	if c.Metadata == nil {
		// nbformat requires an object: a nil map would be written as null, which nbconvert
		// refuses. (Comparing m["metadata"] with nil would not catch it: it holds a typed nil.)
		m["metadata"] = map[string]any{}
	}
	if c.ID != "" {
		m["id"] = c.ID
	}
	if c.CellType == "code" {
		m["execution_count"] = c.ExecutionCount
		outs := c.Outputs
		if outs == nil {
			outs = []output{}
		}
		m["outputs"] = outs
	}
	return json.Marshal(m)
}

func (c cell) isCode() bool { return c.CellType == "code" && strings.TrimSpace(string(c.Source)) != "" }

func readNotebook(path string) (*notebook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return nil, fmt.Errorf("%s is not a Jupyter notebook: %w", path, err)
	}
	if nb.NBFormat != 4 {
		return nil, fmt.Errorf("%s: nbformat %d, want 4", path, nb.NBFormat)
	}
	return &nb, nil
}

// encode formats a notebook the way Jupyter saves it (one-space indent, trailing newline).
func (nb *notebook) encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", " ")
	if err := enc.Encode(nb); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
