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
	s := Tally(names)
	if driver != "" {
		s += " (driver " + driver + ")"
	}
	return s
}

// Tally names GPU models with their counts in order of first appearance:
// "2× NVIDIA H100, 1× NVIDIA A10".
func Tally(models []string) string {
	counts := map[string]int{}
	var order []string
	for _, m := range models {
		if counts[m] == 0 {
			order = append(order, m)
		}
		counts[m]++
	}
	parts := make([]string, len(order))
	for i, m := range order {
		parts[i] = fmt.Sprintf("%d× %s", counts[m], m)
	}
	return strings.Join(parts, ", ")
}

// isCUDA reports whether an XLA configuration names a CUDA plugin (by name or by the path of
// JAX's or GoMLX's plugin file).
func isCUDA(cfg string) bool {
	c := strings.ToLower(cfg)
	return strings.Contains(c, "cuda") || strings.Contains(c, "nvidia")
}
