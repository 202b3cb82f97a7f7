package lab

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/lora"
)

// An Axis is one dimension of a Grid: a name and labelled values, each of which changes the
// grid's experiment in one way (its rank, its seed, its methods). The constructors below
// cover the ablations of the AdaLink paper; NewAxis makes any other.
type Axis struct {
	Name   string
	Labels []string
	set    func(x *Experiment, i int) error
	seed   bool // the seed axis: a sweep's learning rate is chosen once for all its values
	// ablation marks the axes a fast-mode grid thins to their first and last values (see
	// Grid); axes of named things (methods, bases, tasks) keep every value.
	ablation bool
}

// NewAxis makes an axis whose i-th value is applied to an experiment by set.
func NewAxis(name string, labels []string, set func(x *Experiment, i int) error) Axis {
	return Axis{Name: name, Labels: labels, set: set}
}

// Seeds varies the seed (initialisation and batch order).
func Seeds(seeds ...int64) Axis {
	labels := make([]string, len(seeds))
	for i, s := range seeds {
		labels[i] = strconv.FormatInt(s, 10)
	}
	return Axis{Name: "seed", Labels: labels, seed: true, set: func(x *Experiment, i int) error {
		x.Seed = seeds[i]
		return nil
	}}
}

// LRs varies the learning rate.
func LRs(lrs ...float64) Axis {
	labels := make([]string, len(lrs))
	for i, lr := range lrs {
		labels[i] = strconv.FormatFloat(lr, 'g', -1, 64)
	}
	return Axis{Name: "lr", Labels: labels, ablation: true, set: func(x *Experiment, i int) error {
		x.LR = lrs[i]
		return nil
	}}
}

// Ranks varies the rank of every AdaLink and LoRA method of the experiment. A LoRA alpha that
// was set keeps its ratio to the rank (α = 16 at r = 8 becomes α = 2r), so that the
// update's scale α/r stays the same along the axis.
func Ranks(ranks ...int) Axis {
	labels := make([]string, len(ranks))
	for i, r := range ranks {
		labels[i] = strconv.Itoa(r)
	}
	return Axis{Name: "rank", Labels: labels, ablation: true, set: func(x *Experiment, i int) error {
		r := ranks[i]
		changed := false
		x.Methods = mapMethods(x.Methods, func(m peft.Method) peft.Method {
			switch c := derefMethod(m).(type) {
			case adalink.Config:
				c.Rank, changed = r, true
				return c
			case lora.Config:
				if c.Alpha != 0 && c.Rank != 0 {
					c.Alpha = c.Alpha * float64(r) / float64(c.Rank)
				}
				c.Rank, changed = r, true
				return c
			}
			return m
		})
		if !changed {
			return errors.New("the rank axis needs an AdaLink or LoRA method in the experiment")
		}
		return nil
	}}
}

// Placement is where AdaLink adapts a vision-language base's inputs.
type Placement string

// The placements of AdaLink (see Placements).
const (
	OnText   Placement = "text"   // the text-token embeddings only
	OnImage  Placement = "image"  // the image tokens only (after their projection into the model width)
	OnBoth   Placement = "both"   // both, one (A, B) pair each: the paper's design
	OnShared Placement = "shared" // both, one shared pair: the paper's ablation
)

// placementOf reads the placement of an AdaLink configuration.
func placementOf(c adalink.Config) Placement {
	switch {
	case c.Shared:
		return OnShared
	case len(c.Modalities) == 1 && c.Modalities[0] == "text":
		return OnText
	case len(c.Modalities) == 1 && c.Modalities[0] == "image":
		return OnImage
	}
	return OnBoth
}

// apply sets the placement on an AdaLink configuration.
func (p Placement) apply(c adalink.Config) (adalink.Config, error) {
	c.Shared, c.Modalities = false, nil
	switch p {
	case OnText, OnImage:
		c.Modalities = []string{string(p)}
	case OnBoth:
	case OnShared:
		c.Shared = true
	default:
		return c, fmt.Errorf("unknown placement %q (want %s, %s, %s or %s)", p, OnText, OnImage, OnBoth, OnShared)
	}
	return c, nil
}

// Placements varies where the experiment's AdaLink methods act.
func Placements(ps ...Placement) Axis {
	labels := make([]string, len(ps))
	for i, p := range ps {
		labels[i] = string(p)
	}
	return Axis{Name: "placement", Labels: labels, ablation: true, set: func(x *Experiment, i int) error {
		var err error
		changed := false
		x.Methods = mapMethods(x.Methods, func(m peft.Method) peft.Method {
			if c, ok := derefMethod(m).(adalink.Config); ok {
				changed = true
				c, err = ps[i].apply(c)
				return c
			}
			return m
		})
		if err == nil && !changed {
			err = errors.New("the placement axis needs an AdaLink method in the experiment")
		}
		return err
	}}
}

// Target is a named set of LoRA target patterns, e.g. {"q,v", {"block/*/attn/{q,v}"}}.
type Target struct {
	Name     string
	Patterns []string
}

// Targets varies where the experiment's LoRA methods act.
func Targets(ts ...Target) Axis {
	labels := make([]string, len(ts))
	for i, t := range ts {
		labels[i] = t.Name
	}
	return Axis{Name: "targets", Labels: labels, ablation: true, set: func(x *Experiment, i int) error {
		changed := false
		x.Methods = mapMethods(x.Methods, func(m peft.Method) peft.Method {
			if c, ok := derefMethod(m).(lora.Config); ok {
				c.Targets, changed = slices.Clone(ts[i].Patterns), true
				return c
			}
			return m
		})
		if !changed {
			return errors.New("the targets axis needs a LoRA method in the experiment")
		}
		return nil
	}}
}

// Variant is one value of a Variants axis: a name, the methods trained together, and their
// learning rate: LR (0 keeps the experiment's), or, with LRs, the best of LRs on the
// validation split (see Grid: the variant's own sweep replaces the grid's).
type Variant struct {
	Name    string
	Methods []peft.Method
	LR      float64
	LRs     []float64
}

// Variants varies the methods themselves (AdaLink vs LoRA vs FT, or compositions).
func Variants(vs ...Variant) Axis {
	labels := make([]string, len(vs))
	for i, v := range vs {
		labels[i] = v.Name
	}
	return Axis{Name: "method", Labels: labels, set: func(x *Experiment, i int) error {
		x.Methods = slices.Clone(vs[i].Methods)
		if vs[i].LR != 0 {
			x.LR = vs[i].LR
		}
		x.lrs = slices.Clone(vs[i].LRs)
		return nil
	}}
}

// Bases varies the base model (e.g. bases.VLMRaw against bases.VLMInstruct).
func Bases(names ...string) Axis {
	return Axis{Name: "base", Labels: slices.Clone(names), set: func(x *Experiment, i int) error {
		x.Base = names[i]
		return nil
	}}
}

// Tasks varies the task.
func Tasks(names ...string) Axis {
	return Axis{Name: "task", Labels: slices.Clone(names), set: func(x *Experiment, i int) error {
		x.Task = names[i]
		return nil
	}}
}

// fastValues are the value indices a fast-mode grid keeps on the axis: the first seed, the
// first and last value of an ablation axis, every value of the others.
func (a Axis) fastValues() []int {
	n := len(a.Labels)
	switch {
	case a.seed:
		return []int{0}
	case a.ablation && n > 2:
		return []int{0, n - 1}
	}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	return all
}

// mapMethods returns f applied to each method, as a new slice (the grid's template stays as
// it is).
func mapMethods(ms []peft.Method, f func(peft.Method) peft.Method) []peft.Method {
	out := make([]peft.Method, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}
