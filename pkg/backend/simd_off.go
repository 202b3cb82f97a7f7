//go:build !(amd64 && goexperiment.simd)

package backend

// simdBuilt: built without GOEXPERIMENT=simd (or not on amd64): the backend
// runs its portable matrix-product loops.
const simdBuilt = false

func cpuAVX512() bool { return false }
func cpuAVX2() bool   { return false }
