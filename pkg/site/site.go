// Package site names the places in a model where an adapter can attach.
//
// A model declares its sites up front (Layout) and calls a Hook at each of
// them while it builds its graph. Every PEFT method attaches through the same
// two calls, Input and Linear, so no method ever reaches into a model some
// other way, and a new model only has to declare its sites to support every
// method.
//
// Site names are slash-separated paths that double as GoMLX scope paths:
// the base weights of site "block/3/attn/q" live in scope "/block/3/attn/q".
//
//	input/text        text-token embeddings, after the embedding table, before the first block
//	input/image       image-patch embeddings, after the projection to the model width
//	block/3/attn/q    the query projection of block 3 (a Linear site)
//	block/3/mlp/up    the first MLP projection of block 3
//	head/cls          the classification head
package site

import (
	"fmt"
	"slices"
)

// Kind says what computation happens at a site, and so which methods can use it.
type Kind int

const (
	// Input is an input embedding sequence [batch, seq, width], between the
	// embedding layer of one modality and the first transformer block.
	Input Kind = iota
	// Linear is a dense projection x·W+b from In to Out features.
	Linear
)

// String returns "input" or "linear".
func (k Kind) String() string {
	switch k {
	case Input:
		return "input"
	case Linear:
		return "linear"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Site is one named attachment point with its static shape.
type Site struct {
	// Name is the site's path, e.g. "block/3/attn/q" or "input/text".
	Name string
	Kind Kind
	// In and Out are the feature sizes: for a Linear site the weight is [In, Out];
	// for an Input site both are the model width.
	In, Out int
	// Modality is "text" or "image" for Input sites, empty otherwise.
	Modality string
}

// Scope is the GoMLX scope path that holds the site's base weights.
func (s Site) Scope() string { return "/" + s.Name }

// Param is one weight tensor: its full scope-and-name path and its shape.
// Base models list theirs in Layout.Params; methods list the ones they create.
type Param struct {
	// Name is the variable's scope and name joined, e.g. "/block/0/attn/q/weights".
	Name  string
	Shape []int
}

// Size is the number of scalars in the parameter.
func (p Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Layout describes a base model to the methods: its sites and its weights.
// It is plain data, computed from the model's configuration without building
// a graph, so a plan can be shown before anything is allocated.
type Layout struct {
	// Model is a short human name for the base, used in messages.
	Model string
	Width int
	Vocab int
	// Blocks is the number of transformer blocks.
	Blocks int
	// MaxLen is the longest text sequence the model accepts, counting tokens
	// that input hooks insert (prompt tuning), or 0 when it has no text.
	MaxLen int
	Sites  []Site
	Params []Param
}

// Site returns the site with the given name.
func (l Layout) Site(name string) (Site, bool) {
	i := slices.IndexFunc(l.Sites, func(s Site) bool { return s.Name == name })
	if i < 0 {
		return Site{}, false
	}
	return l.Sites[i], true
}

// Modalities lists the modalities that have an Input site, in site order.
func (l Layout) Modalities() []string {
	var ms []string
	for _, s := range l.Sites {
		if s.Kind == Input && !slices.Contains(ms, s.Modality) {
			ms = append(ms, s.Modality)
		}
	}
	return ms
}

// NumParams is the total size of the base weights.
func (l Layout) NumParams() int {
	n := 0
	for _, p := range l.Params {
		n += p.Size()
	}
	return n
}
