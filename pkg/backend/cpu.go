package backend

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// CPU names the processor the pure-Go backend runs on, with its widest vector extension,
// for result tables: "Intel(R) Xeon(R) Processor (AVX-512)". It reads /proc/cpuinfo (Linux);
// elsewhere it gives the architecture.
func CPU() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	name := runtime.GOARCH
	var flags []string
	seen := false
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model name":
			if !seen {
				name, seen = strings.TrimSpace(v), true
			}
		case "flags":
			if flags == nil {
				flags = strings.Fields(v)
			}
		}
	}
	ext := "no AVX2"
	for _, f := range flags {
		if f == "avx2" && ext == "no AVX2" {
			ext = "AVX2"
		}
		if f == "avx512f" {
			ext = "AVX-512"
		}
	}
	return fmt.Sprintf("%s (%s)", name, ext)
}
