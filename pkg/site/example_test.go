package site_test

import (
	"fmt"

	"github.com/peftlab/peftlab/pkg/site"
)

// A model declares its sites; methods pick theirs with patterns. A pattern
// that matches nothing is an error that lists what exists, instead of an
// adapter silently attached nowhere.
func ExampleLayout_Select() {
	l := site.Layout{
		Model: "tiny",
		Sites: []site.Site{
			{Name: "input/text", Kind: site.Input, In: 8, Out: 8, Modality: "text"},
			{Name: "block/0/attn/q", Kind: site.Linear, In: 8, Out: 8},
			{Name: "block/0/attn/v", Kind: site.Linear, In: 8, Out: 8},
			{Name: "block/0/mlp/up", Kind: site.Linear, In: 8, Out: 32},
		},
	}
	sites, _ := l.Select("block/*/attn/{q,v}")
	for _, s := range sites {
		fmt.Println(s.Name, s.Kind, s.In, "->", s.Out)
	}
	_, err := l.Select("block/*/attn/k")
	fmt.Println(err)
	// Output:
	// block/0/attn/q linear 8 -> 8
	// block/0/attn/v linear 8 -> 8
	// pattern "block/*/attn/k" matches no site of tiny; its sites are: input/text, block/0/attn/q, block/0/attn/v, block/0/mlp/up
}
