package tasks

import (
	"sync"

	"github.com/peftlab/peftlab/pkg/labdir"
)

// The raw data sets are read once per process and shared by the tasks built on them (four
// tasks read MNIST; a notebook loads several). Loaders return fresh slices of examples, but the
// underlying data is read-only and shared.
var (
	cacheMu sync.Mutex
	cache   = map[string]any{}
)

func cached[T any](key string, load func() (T, error)) (T, error) {
	key = labdir.Data() + "|" + key // another data directory is other data
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if v, ok := cache[key]; ok {
		return v.(T), nil
	}
	v, err := load()
	if err != nil {
		return v, err // failures are not cached: installing the data fixes them
	}
	cache[key] = v
	return v, nil
}

// trainCap and evalCap keep the fast subset of a split's (already shuffled) indices, so that
// fast tasks build (and clean, and decode) only the examples they keep.
func (o Options) trainCap(idx []int) []int {
	if o.Fast {
		return idx[:min(len(idx), FastTrain)]
	}
	return idx
}

func (o Options) evalCap(idx []int) []int {
	if o.Fast {
		return idx[:min(len(idx), FastEval)]
	}
	return idx
}
