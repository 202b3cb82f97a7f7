package model

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/compute"
	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/compute/shapes"
	. "github.com/gomlx/gomlx/core/graph" //nolint:revive // GoMLX layer style.
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/internal/catch"
	"github.com/peftlab/peftlab/pkg/safetensors"
)

// A base checkpoint is a directory with two files, in the spirit of a Hugging
// Face model folder:
//
//	config.json         the Config, as JSON
//	model.safetensors   every weight of Layout().Params, F32, named by its scope
//	                    path without the leading "/" ("block/0/attn/q/weights")
//
// It holds the base only: never adapters, optimizer state or the RNG state.
const (
	ConfigFile  = "config.json"
	WeightsFile = "model.safetensors"
)

// Init creates every base weight of c that sc lacks and gives it its
// initial value, by running the model once on a one-token (and/or one-image)
// batch. Weights already in sc (loaded ones) are kept. Set the seed first
// (sc.SetRNGStateFromSeed) for reproducible weights.
func Init(b compute.Backend, sc *mlmodel.Scope, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	err := catch.Error(func() error {
		_, err := mlmodel.ExecOnceN(b, sc.Store(), initGraph(c))
		return err
	})
	if err != nil {
		return fmt.Errorf("init %s: %w", c.ModelName(), err)
	}
	return nil
}

// initGraph is the graph Init runs: the model on a one-token (and/or one-image) batch, which
// creates every weight it lacks.
func initGraph(c Config) func(sc *mlmodel.Scope, g *Graph) []*Node {
	return func(sc *mlmodel.Scope, g *Graph) []*Node {
		var in Inputs
		if c.HasText() {
			in.Tokens = Ones(g, shapes.Make(dtypes.Int32, 1, 1))
		}
		if c.HasImage() {
			in.Images = Zeros(g, shapes.Make(dtypes.Float32, 1, c.ImageSize, c.ImageSize, c.Channels))
		}
		var out []*Node
		if c.Classes > 0 {
			out = append(out, Classify(sc, c, nil, in))
		}
		if c.HasText() {
			out = append(out, LMLogits(sc, c, nil, in))
		}
		if len(out) == 0 {
			h, _ := Encode(sc, c, nil, in)
			out = append(out, h)
		}
		return out
	}
}

// Save writes the base weights of c held in sc, and c itself, to dir
// (created if needed). Each file is written atomically, the config last, so
// a directory with a config.json always has its weights. Variables outside
// Layout().Params (adapters under "/adapters", optimizer state) are not
// saved. It fails, naming the weight, when sc lacks one or holds it with
// another shape: run Init or the model once first.
func Save(dir string, c Config, sc *mlmodel.Scope) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("save base model: %w", err)
	}
	f := &safetensors.File{Metadata: map[string]string{"format": "peftlab-base", "model": c.ModelName()}}
	for _, p := range c.Layout().Params {
		v := sc.Store().GetVariable(p.Name)
		if v == nil || !v.HasValue() {
			return fmt.Errorf("save %s: weight %s is not in the context (run model.Init or the model once first)", c.ModelName(), p.Name)
		}
		if !slices.Equal(v.Shape().Dimensions, p.Shape) || v.DType() != dtypes.Float32 {
			return fmt.Errorf("save %s: weight %s is %s, the config wants Float32%v", c.ModelName(), p.Name, v.Shape(), p.Shape)
		}
		value, err := v.Value()
		if err != nil {
			return fmt.Errorf("save %s: weight %s: %w", c.ModelName(), p.Name, err)
		}
		t, err := safetensors.FromTensor(strings.TrimPrefix(p.Name, "/"), value)
		if err != nil {
			return fmt.Errorf("save %s: %w", c.ModelName(), err)
		}
		f.Tensors = append(f.Tensors, t)
	}
	cfg, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", c.ModelName(), err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save %s: %w", c.ModelName(), err)
	}
	if err := safetensors.WriteFile(filepath.Join(dir, WeightsFile), f); err != nil {
		return fmt.Errorf("save %s: %w", c.ModelName(), err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(dir, ConfigFile), append(cfg, '\n')); err != nil {
		return fmt.Errorf("save %s: %w", c.ModelName(), err)
	}
	return nil
}

// Load reads a base checkpoint written by Save and returns its Config and a
// new context holding exactly its weights (trainable by default: let
// peft.Model.ApplyTrainable decide). It fails with a message naming the
// problem when the config is invalid or has unknown fields, or when the
// weights file lacks a weight, has one of the wrong shape or dtype, or
// holds weights the config does not describe.
func Load(dir string) (Config, *mlmodel.Scope, error) {
	var c Config
	raw, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return c, nil, fmt.Errorf("load base model: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, nil, fmt.Errorf("load base model: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	if err := c.Validate(); err != nil {
		return c, nil, fmt.Errorf("load base model: %s: %w", filepath.Join(dir, ConfigFile), err)
	}
	path := filepath.Join(dir, WeightsFile)
	f, err := safetensors.ReadFile(path)
	if err != nil {
		return c, nil, fmt.Errorf("load base model: %w", err)
	}
	sc := mlmodel.NewStore().RootScope()
	want := map[string]bool{}
	for _, p := range c.Layout().Params {
		name := strings.TrimPrefix(p.Name, "/")
		want[name] = true
		st, ok := f.Tensor(name)
		if !ok {
			return c, nil, fmt.Errorf("load base model: %s has no weight %q, which config %s needs", path, name, c.ModelName())
		}
		if st.DType != safetensors.F32 || !slices.Equal(st.Shape, p.Shape) {
			return c, nil, fmt.Errorf("load base model: %s: weight %q is %s%v, the config wants F32%v", path, name, st.DType, st.Shape, p.Shape)
		}
		t, err := st.ToTensor()
		if err != nil {
			return c, nil, fmt.Errorf("load base model: %s: %w", path, err)
		}
		if _, err := sc.Store().CreateVariable(p.Name, t); err != nil {
			return c, nil, fmt.Errorf("load base model: %w", err)
		}
	}
	for _, name := range f.Names() {
		if !want[name] {
			return c, nil, fmt.Errorf("load base model: %s holds weight %q, which config %s does not have (config and weights do not match)",
				path, name, c.ModelName())
		}
	}
	return c, sc, nil
}
