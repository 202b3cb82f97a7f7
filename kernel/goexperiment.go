package main

import (
	"os"
	"strings"
)

// GoMLX's pure-Go backend has AVX2 and AVX-512 matrix-product kernels that Go 1.26 compiles only
// with GOEXPERIMENT=simd (simd/archsimd). GoNB builds every notebook cell with `go build`, so the
// kernel registers GOEXPERIMENT in its kernelspec environment, `exec` passes it to the kernel it
// runs and to the build that warms the cache (the build cache is keyed by the experiments, so a
// warm-up without simd would not help the cells). A build without it still works, on portable
// scalar loops: backend.Describe() in a notebook's first cell says which path ran.
const (
	goExperimentEnv = "GOEXPERIMENT"
	simdExperiment  = "simd"
)

// withSIMD returns a GOEXPERIMENT value that turns the simd experiment on, keeping what the
// caller already asked for: "" becomes "simd", a list without simd gets ",simd" appended, and a
// list that names simd already, or switches it off explicitly ("nosimd"), is returned unchanged:
// an explicit "nosimd" is the way to build the portable loops on purpose.
func withSIMD(value string) string {
	value = strings.TrimSpace(value)
	if value == "" {
		return simdExperiment
	}
	for _, e := range strings.Split(value, ",") {
		switch strings.TrimSpace(e) {
		case simdExperiment, "no" + simdExperiment:
			return value
		}
	}
	return value + "," + simdExperiment
}

// goExperiment is the GOEXPERIMENT project code is built with: the caller's, with simd added.
func goExperiment() string { return withSIMD(os.Getenv(goExperimentEnv)) }
