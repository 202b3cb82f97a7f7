package peft

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/core/tensors"
	mlmodel "github.com/gomlx/gomlx/ml/model"
	"github.com/peftlab/peftlab/pkg/safetensors"
)

// trainingScopes are the top-level scopes where GoMLX v0.26 keeps training
// state rather than model weights: optimizer settings and schedules
// ("/optimizers"), Adam's moments and step count ("/AdamOptimizer", its
// default scope), metrics ("/metrics"), accumulated gradients ("/acc_grads")
// and the training loop's counters ("/trainer").
var trainingScopes = []string{"optimizers", "AdamOptimizer", "metrics", "acc_grads", "trainer"}

// IsBaseVariable reports whether the variable at scopeAndName (e.g.
// "/block/0/attn/q/weights") is a base-model weight: anything outside the
// adapters' scope "/adapters", outside GoMLX's training-state scopes
// (/optimizers, /AdamOptimizer, /metrics, /acc_grads, /trainer), not a step
// counter ("global_step", anywhere) and not a GoMLX-internal variable (a
// name starting with "#", like the random-number state "/#rngState").
func IsBaseVariable(scopeAndName string) bool {
	scope, name := mlmodel.SplitPath(scopeAndName)
	if name == "global_step" || strings.HasPrefix(name, "#") {
		return false
	}
	top, _, _ := strings.Cut(strings.TrimPrefix(scope, "/"), "/")
	return top != strings.TrimPrefix(AdapterScope, "/") && !slices.Contains(trainingScopes, top)
}

// BaseHash identifies a base model by its weights: "sha256:" and the hex
// SHA-256 over every base variable of sc (see IsBaseVariable), in name order,
// each contributing its name, dtype, shape and little-endian bytes. It is the
// same across runs and machines for the same weights, and changes if any bit,
// name or shape changes. Adapter files record it so an adapter is never
// silently loaded onto a different base.
//
// Variables a checkpoint loader holds but sc has not materialized yet are
// included, so the hash does not depend on which variables a graph has used.
// It fails when a base variable has no value yet (initialize or load the base
// first) or when sc holds no base weights at all.
func BaseHash(sc *mlmodel.Scope) (string, error) {
	h, n, err := baseHash(sc, nil)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("the context holds no base-model weights: load or initialize the base model first")
	}
	return h, nil
}

// checkpointVarPrefix starts the keys of variables in a GoMLX checkpoint
// handler's LoadedVariables (unexported upstream as variableParameterPrefix).
const checkpointVarPrefix = "var:"

// baseHash hashes the base variables not in skip and says how many it hashed.
func baseHash(sc *mlmodel.Scope, skip map[string]bool) (string, int, error) {
	values := map[string]*tensors.Tensor{}
	for v := range sc.Store().IterVariables() {
		path := v.Path()
		if !IsBaseVariable(path) || skip[path] {
			continue
		}
		if !v.HasValue() {
			return "", 0, fmt.Errorf("base weight %s has no value yet: initialize or load the base model before hashing it", path)
		}
		t, err := v.Value()
		if err != nil {
			return "", 0, fmt.Errorf("base weight %s: %w", path, err)
		}
		values[path] = t
	}
	// A checkpoint handler loads lazily: include what it holds but has not
	// handed to sc yet.
	if pending, ok := sc.Store().Loader().(interface {
		LoadedVariables() map[string]*tensors.Tensor
	}); ok {
		for key, t := range pending.LoadedVariables() {
			// GoMLX's checkpoint handler keys variables "var:" + full path
			// (and keeps hyperparameters under other keys).
			path, ok := strings.CutPrefix(key, checkpointVarPrefix)
			if !ok {
				continue
			}
			if _, have := values[path]; !have && IsBaseVariable(path) && !skip[path] {
				values[path] = t
			}
		}
	}
	names := make([]string, 0, len(values))
	for n := range values {
		names = append(names, n)
	}
	slices.Sort(names)
	sum := sha256.New()
	for _, name := range names {
		st, err := safetensors.FromTensor(name, values[name])
		if err != nil {
			return "", 0, fmt.Errorf("base weight %s: %w", name, err)
		}
		hashTensor(sum, st)
	}
	return "sha256:" + hex.EncodeToString(sum.Sum(nil)), len(names), nil
}

// hashTensor feeds one tensor to h, every field length-prefixed so that no
// two different tensor lists produce the same byte stream.
func hashTensor(h hash.Hash, t safetensors.Tensor) {
	var b []byte
	b = binary.LittleEndian.AppendUint64(b, uint64(len(t.Name)))
	b = append(b, t.Name...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(t.DType)))
	b = append(b, t.DType...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(t.Shape)))
	for _, d := range t.Shape {
		b = binary.LittleEndian.AppendUint64(b, uint64(d))
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(len(t.Data)))
	h.Write(b)
	h.Write(t.Data)
}
