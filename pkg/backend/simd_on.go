//go:build amd64 && goexperiment.simd

package backend

import "simd/archsimd"

// simdBuilt: this binary has the backend's SIMD kernels (GOEXPERIMENT=simd).
const simdBuilt = true

// The same CPU tests the backend's kernel registration uses.
func cpuAVX512() bool { return archsimd.X86.AVX512() }
func cpuAVX2() bool   { return archsimd.X86.AVX2() }
