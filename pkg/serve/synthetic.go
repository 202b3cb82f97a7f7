package serve

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
)

// SyntheticAdapter saves to dir (peft.SaveAdapter's layout) an adapter named name of method
// m for base, with random weights drawn from seed: what a trained adapter looks like to the
// server, without training one. Benchmarks and tests use it to load many tasks; their
// answers are whatever those weights give, which is enough to check that every example gets
// its own adapter's.
//
// The weights are strong enough to change the base's answers: each matrix is normal with
// standard deviation 1/√rows (so AdaLink's and LoRA's updates are about as large as their
// inputs), soft prompts have 0.05 (the scale of the base's embeddings), and a full
// fine-tuning adapter moves every base weight by 5% of its own spread.
func SyntheticAdapter(dir string, base *bases.Base, name string, m peft.Method, seed uint64) error {
	fail := func(err error) error { return fmt.Errorf("synthetic adapter %q: %w", name, err) }
	layout := base.Config.Layout()
	pm, err := peft.New(layout, peft.Adapter{Name: name, Method: m})
	if err != nil {
		return fail(err)
	}
	res, _ := pm.Resolution(name)
	rng := rand.New(rand.NewPCG(seed, 0x5e7e_ada9))
	st := mlmodel.NewStore()
	for v := range base.Scope.Store().IterVariables() {
		if !peft.IsBaseVariable(v.Path()) {
			continue
		}
		t, err := v.Value()
		if err != nil {
			return fail(err)
		}
		if _, err := st.CreateVariable(v.Path(), t); err != nil {
			return fail(err)
		}
	}
	for _, p := range res.New {
		std := 1 / math.Sqrt(float64(p.Shape[0]))
		if m.Type() == prompt.PeftType {
			std = 0.05
		}
		vals := make([]float32, p.Size())
		for i := range vals {
			vals[i] = float32(rng.NormFloat64() * std)
		}
		if _, err := st.CreateVariable(peft.AdapterScope+"/"+name+"/"+p.Name, tensors.FromFlatDataAndDimensions(vals, p.Shape...)); err != nil {
			return fail(err)
		}
	}
	for _, p := range res.Base {
		v := st.GetVariable(p.Name)
		if v == nil {
			return fail(fmt.Errorf("base weight %s is missing", p.Name))
		}
		t, err := v.Value()
		if err != nil {
			return fail(err)
		}
		vals, err := tensors.CopyFlatData[float32](t)
		if err != nil {
			return fail(err)
		}
		var mean, sq float64
		for _, x := range vals {
			mean += float64(x)
		}
		mean /= float64(len(vals))
		for _, x := range vals {
			sq += (float64(x) - mean) * (float64(x) - mean)
		}
		std := math.Sqrt(sq/float64(len(vals))) + 1e-3
		for i := range vals {
			vals[i] += float32(0.05 * std * rng.NormFloat64())
		}
		// A new tensor: the base's own stays untouched.
		if err := v.SetValuePreservingOld(tensors.FromFlatDataAndDimensions(vals, p.Shape...)); err != nil {
			return fail(err)
		}
	}
	if err := peft.SaveAdapter(dir, st.RootScope(), pm, name); err != nil {
		return fail(err)
	}
	return nil
}
