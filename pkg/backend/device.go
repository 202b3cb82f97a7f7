package backend

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// GPUs names this machine's NVIDIA GPUs and driver, e.g. "1× NVIDIA H200 (driver
// 580.159.03)", from nvidia-smi or else /proc/driver/nvidia; "" when there is none. Describe
// shows it for the XLA backend on a CUDA plugin. It is read once per process.
func GPUs() string {
	gpusOnce.Do(func() { gpus = readGPUs() })
	return gpus
}

var (
	gpusOnce sync.Once
	gpus     string
	reModel  = regexp.MustCompile(`(?m)^Model:\s*(.+?)\s*$`)
	reDriver = regexp.MustCompile(`\b\d{3,}\.\d+(?:\.\d+)?\b`)
)

func readGPUs() string {
	var names []string
	driver := ""
	if smi, err := exec.LookPath("nvidia-smi"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if out, err := exec.CommandContext(ctx, smi, "--query-gpu=name,driver_version", "--format=csv,noheader").Output(); err == nil {
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if name, ver, ok := strings.Cut(line, ","); ok {
					names = append(names, strings.TrimSpace(name))
					driver = strings.TrimSpace(ver)
				}
			}
		}
	}
	if len(names) == 0 {
		infos, _ := filepath.Glob("/proc/driver/nvidia/gpus/*/information")
		for _, f := range infos {
			if b, err := os.ReadFile(f); err == nil {
				if m := reModel.FindSubmatch(b); m != nil {
					names = append(names, string(m[1]))
				}
			}
		}
		if b, err := os.ReadFile("/proc/driver/nvidia/version"); err == nil {
			driver = reDriver.FindString(string(b))
		}
	}
	if len(names) == 0 {
		return ""
	}
	counts := map[string]int{}
	var order []string
	for _, n := range names {
		if counts[n] == 0 {
			order = append(order, n)
		}
		counts[n]++
	}
	var parts []string
	for _, n := range order {
		parts = append(parts, fmt.Sprintf("%d× %s", counts[n], n))
	}
	s := strings.Join(parts, ", ")
	if driver != "" {
		s += " (driver " + driver + ")"
	}
	return s
}

// isCUDA reports whether an XLA configuration names a CUDA plugin (by name or by the path of
// JAX's or GoMLX's plugin file).
func isCUDA(cfg string) bool {
	c := strings.ToLower(cfg)
	return strings.Contains(c, "cuda") || strings.Contains(c, "nvidia")
}
