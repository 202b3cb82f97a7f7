package lora

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/gomlx/compute/dtypes"
	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/site"
)

// mergedParam is the context parameter, set in the adapter's scope
// ("/adapters/<name>"), that records that the adapter is merged. Its value
// is a *mergeRecord while the merging process runs, the bool true after the
// context went through a GoMLX checkpoint (JSON), and false or absent when
// the adapter is not merged.
const mergedParam = "lora_merged"

// mergeRecord remembers, for each merged site, the base weight as it was
// before Merge, so Unmerge can restore it bit for bit (subtracting the update
// again would be off by float32 rounding, and the frozen-weights check of
// training demands exact bits).
type mergeRecord struct {
	sites map[string]mergedSite
}

type mergedSite struct {
	original []float32 // W before Merge
	merged   uint64    // hash of W' as Merge wrote it
}

// MarshalJSON makes the record survive GoMLX checkpoints as the plain mark
// true: the originals are host memory of this process only.
func (*mergeRecord) MarshalJSON() ([]byte, error) { return []byte("true"), nil }

// mergedAt reports whether the adapter whose scope sc is at is merged.
func mergedAt(sc *mlmodel.Scope) bool {
	v, _ := sc.GetParam(mergedParam)
	switch v := v.(type) {
	case *mergeRecord:
		return v != nil
	case bool:
		return v
	}
	return false
}

// IsMerged reports whether the named LoRA adapter of m is merged into the
// base weights held by sc.
func IsMerged(sc *mlmodel.Scope, m *peft.Model, adapter string) (bool, error) {
	a, _, err := lookup(m, adapter)
	if err != nil {
		return false, err
	}
	return mergedAt(sc.Store().Scope(a.Scope())), nil
}

// Merge folds the named LoRA adapter into the base weights held by sc:
// for each adapted site W ← W + scale·A·B, computed on the host in float64
// and rounded once to float32. From then on the adapter's hook adds nothing,
// so the model runs at the base model's speed and merged and unmerged
// outputs agree to float32 rounding (~1e-6). Merge keeps a host copy of
// each adapted weight as it was (memory: the size of those weights) so that
// Unmerge can restore it bit for bit.
//
// The merged state is a context parameter ("lora_merged") in the adapter's
// scope, read when a graph is built. Consequences:
//   - Graphs built before Merge (a context.Exec already run, whose graph is
//     cached) still add the update to the now merged weights: build a new
//     Exec after Merge and after Unmerge.
//   - A GoMLX checkpoint of the whole context saves the mark with the merged
//     weights, so reloading it gives a consistent merged model. Adapter files
//     hold only the adapter's weights, so an adapter loaded from one starts
//     unmerged, as the freshly loaded base it goes on. Do not save adapter-only
//     GoMLX checkpoints while merged.
//   - The base weights change: a hash of them changes, and they are for
//     inference and export. Unmerge before training the adapter again (while
//     merged, its weights are not in the graph and cannot learn).
//
// Merge fails, changing nothing, when the adapter is unknown, not LoRA,
// already merged, or its weights or the base's are missing or misshapen.
func Merge(sc *mlmodel.Scope, m *peft.Model, adapter string) error {
	a, res, err := lookup(m, adapter)
	if err != nil {
		return err
	}
	actx := sc.Store().Scope(a.Scope())
	if mergedAt(actx) {
		return fmt.Errorf("lora.Merge: adapter %q is already merged", adapter)
	}
	cfg, _ := method(a)
	rank, scale := cfg.WithDefaults().Rank, cfg.Scale()
	rec := &mergeRecord{sites: map[string]mergedSite{}}
	type write struct {
		v *mlmodel.Variable
		t *tensors.Tensor
	}
	var writes []write
	for _, s := range res.Sites {
		w, A, B, err := siteWeights(sc, a, s, rank)
		if err != nil {
			return fmt.Errorf("lora.Merge(%q): %w", adapter, err)
		}
		merged := make([]float32, len(w.values))
		addProduct(merged, w.values, A.values, B.values, s.In, rank, s.Out, scale)
		rec.sites[s.Name] = mergedSite{original: w.values, merged: hashFloats(merged)}
		writes = append(writes, write{w.v, tensors.FromFlatDataAndDimensions(merged, s.In, s.Out)})
	}
	for _, wr := range writes {
		if err := wr.v.SetValue(wr.t); err != nil {
			return fmt.Errorf("lora.Merge(%q): writing %s: %w", adapter, wr.v.Path(), err)
		}
	}
	actx.SetParam(mergedParam, rec)
	return nil
}

// Unmerge takes the named adapter's update out of the base weights again and
// clears the mark, so the hook adds it in the graph as before. A weight that
// is exactly as Merge left it gets its original bits back; one that changed
// since (trained, or reloaded from a checkpoint, where the originals are not
// kept) gets W - scale·A·B, exact only to float32 rounding. It fails when the
// adapter is not merged. Build a new context.Exec afterwards (see Merge).
func Unmerge(sc *mlmodel.Scope, m *peft.Model, adapter string) error {
	a, res, err := lookup(m, adapter)
	if err != nil {
		return err
	}
	actx := sc.Store().Scope(a.Scope())
	if !mergedAt(actx) {
		return fmt.Errorf("lora.Unmerge: adapter %q is not merged", adapter)
	}
	v, _ := actx.GetParam(mergedParam)
	rec, _ := v.(*mergeRecord) // nil after a checkpoint round trip
	cfg, _ := method(a)
	rank := cfg.WithDefaults().Rank
	type write struct {
		v *mlmodel.Variable
		t *tensors.Tensor
	}
	var writes []write
	for _, s := range res.Sites {
		w, A, B, err := siteWeights(sc, a, s, rank)
		if err != nil {
			return fmt.Errorf("lora.Unmerge(%q): %w", adapter, err)
		}
		var restored []float32
		if ms, ok := rec.site(s.Name); ok && hashFloats(w.values) == ms.merged {
			restored = ms.original
		} else {
			restored = make([]float32, len(w.values))
			addProduct(restored, w.values, A.values, B.values, s.In, rank, s.Out, -cfg.Scale())
		}
		writes = append(writes, write{w.v, tensors.FromFlatDataAndDimensions(restored, s.In, s.Out)})
	}
	for _, wr := range writes {
		if err := wr.v.SetValue(wr.t); err != nil {
			return fmt.Errorf("lora.Unmerge(%q): writing %s: %w", adapter, wr.v.Path(), err)
		}
	}
	actx.SetParam(mergedParam, false)
	return nil
}

func (r *mergeRecord) site(name string) (mergedSite, bool) {
	if r == nil {
		return mergedSite{}, false
	}
	ms, ok := r.sites[name]
	return ms, ok
}

// lookup finds a LoRA adapter attached to m and what it resolved to.
func lookup(m *peft.Model, adapter string) (peft.Adapter, peft.Resolution, error) {
	if m == nil {
		return peft.Adapter{}, peft.Resolution{}, fmt.Errorf("lora: no peft.Model given")
	}
	a, ok := m.Adapter(adapter)
	if !ok {
		var names []string
		for _, x := range m.Adapters() {
			names = append(names, x.Name)
		}
		return a, peft.Resolution{}, fmt.Errorf("lora: no adapter %q attached (attached: %v)", adapter, names)
	}
	if _, ok := method(a); !ok {
		return a, peft.Resolution{}, fmt.Errorf("lora: adapter %q is %s, not LoRA", adapter, a.Method.Type())
	}
	res, _ := m.Resolution(adapter)
	return a, res, nil
}

func method(a peft.Adapter) (Config, bool) {
	switch c := a.Method.(type) {
	case Config:
		return c, true
	case *Config:
		if c != nil {
			return *c, true
		}
	}
	return Config{}, false
}

// hostMatrix is a variable and a host copy of its float32 values.
type hostMatrix struct {
	v      *mlmodel.Variable
	values []float32
}

// siteWeights reads the base weight W [in, out] of s and the adapter's A
// [in, rank] and B [rank, out], checking that they exist with those shapes.
func siteWeights(sc *mlmodel.Scope, a peft.Adapter, s site.Site, rank int) (w, A, B hostMatrix, err error) {
	if w, err = readVar(sc, s.Scope(), "weights", s.In, s.Out, "the base model's weight (build the model's graph or load the base first)"); err != nil {
		return
	}
	scope := a.Scope() + "/" + s.Name
	const why = "the adapter's weights (build a graph with the adapter attached, or load the adapter, first)"
	if A, err = readVar(sc, scope, VarA, s.In, rank, why); err != nil {
		return
	}
	B, err = readVar(sc, scope, VarB, rank, s.Out, why)
	return
}

func readVar(sc *mlmodel.Scope, scope, name string, rows, cols int, what string) (hostMatrix, error) {
	v := sc.Store().GetVariable(mlmodel.JoinPath(scope, name))
	if v == nil || !v.HasValue() {
		return hostMatrix{}, fmt.Errorf("variable %s/%s not found: it is %s", scope, name, what)
	}
	sh := v.Shape()
	if sh.DType != dtypes.Float32 || sh.Rank() != 2 || sh.Dimensions[0] != rows || sh.Dimensions[1] != cols {
		return hostMatrix{}, fmt.Errorf("variable %s/%s is %s, want (Float32)[%d %d]", scope, name, sh, rows, cols)
	}
	t, err := v.Value()
	if err != nil {
		return hostMatrix{}, fmt.Errorf("reading %s/%s: %w", scope, name, err)
	}
	vals, err := tensors.CopyFlatData[float32](t)
	if err != nil {
		return hostMatrix{}, fmt.Errorf("reading %s/%s: %w", scope, name, err)
	}
	return hostMatrix{v: v, values: vals}, nil
}

// addProduct sets dst = w + scale·a·b for a [n, r], b [r, m], row-major,
// accumulating in float64 and rounding once to float32.
func addProduct(dst, w, a, b []float32, n, r, m int, scale float64) {
	row := make([]float64, m)
	for i := range n {
		clear(row)
		for k := range r {
			aik := float64(a[i*r+k])
			for j, bkj := range b[k*m : (k+1)*m] {
				row[j] += aik * float64(bkj)
			}
		}
		for j := range m {
			dst[i*m+j] = float32(float64(w[i*m+j]) + scale*row[j])
		}
	}
}

// hashFloats is an FNV-1a hash of the values' bits.
func hashFloats(v []float32) uint64 {
	h := fnv.New64a()
	buf := make([]byte, 0, 4096)
	for _, f := range v {
		buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(f))
		if len(buf) == cap(buf) {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum64()
}
