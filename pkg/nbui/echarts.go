package nbui

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/peftlab/peftlab/pkg/fetch"
	"github.com/peftlab/peftlab/pkg/labdir"
)

// The pinned ECharts release whose scripts are inlined in chart outputs. The integrity is npm's
// dist.integrity (`npm view echarts@5.6.0 dist.integrity`): the tarball is checked against it
// before anything is unpacked.
const (
	EChartsVersion   = "5.6.0"
	EChartsIntegrity = "sha512-oTbVTsXfKuEhxftHqL5xprgLoc0k7uScAwtryCgWF6hPYFLRwOUHiFmHGCBKP5NPFNkDVopOieyUqYGH8Fa3kA=="
)

// Two builds of the same release are kept. The "common" build (664 KB) has the line, bar, pie
// and scatter series with title, legend, tooltip, grid, dataZoom, toolbox and markers: enough for
// almost every chart, so it is the one normally inlined. It lacks the heatmap series and the
// visualMap component, so charts that need them inline the full build (1 MB) instead.
const (
	commonScript = "dist/echarts.common.min.js"
	fullScript   = "dist/echarts.min.js"
)

// InstallCommand is what a researcher runs to install the ECharts scripts.
const InstallCommand = "go run ./kernel install"

var echartsPackage = fetch.Package{
	Name:      "echarts",
	Version:   EChartsVersion,
	Integrity: EChartsIntegrity,
	Keep: func(p string) bool {
		return p == commonScript || p == fullScript || p == "LICENSE" || p == "NOTICE"
	},
	Selection: commonScript + " " + fullScript + " LICENSE NOTICE",
}

// EChartsDir is where InstallECharts puts the scripts: labdir.Assets()/echarts-5.6.0.
func EChartsDir() string {
	return filepath.Join(labdir.Assets(), "echarts-"+EChartsVersion)
}

// InstallECharts downloads echarts@5.6.0 with npm, verifies it against the pinned integrity and
// unpacks its two minified builds (plus LICENSE and NOTICE) into EChartsDir. A second call is a
// no-op.
func InstallECharts() error {
	if err := echartsPackage.Fetch(EChartsDir()); err != nil {
		return fmt.Errorf("install ECharts for notebook charts: %w", err)
	}
	return nil
}

// EChartsInstalled reports whether EChartsDir holds a complete, verified install of the pinned
// release (what InstallECharts leaves).
func EChartsInstalled() bool { return echartsPackage.Installed(EChartsDir()) }

// ErrEChartsMissing is returned (wrapped) when the ECharts scripts are not installed.
var ErrEChartsMissing = errors.New("the ECharts script for notebook charts is not installed")

var (
	scriptsMu sync.Mutex
	scripts   = map[string]string{} // path under EChartsDir -> content, read once per process
)

// loadScript returns the content of one installed ECharts build, or an error saying which
// command installs it.
func loadScript(name string) (string, error) {
	dir := EChartsDir()
	scriptsMu.Lock()
	defer scriptsMu.Unlock()
	key := filepath.Join(dir, name)
	if s, ok := scripts[key]; ok {
		return s, nil
	}
	if !echartsPackage.Installed(dir) {
		return "", fmt.Errorf("%w (echarts@%s missing or incomplete in %s): run: %s (or make install)",
			ErrEChartsMissing, EChartsVersion, dir, InstallCommand)
	}
	b, err := os.ReadFile(key)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w (%s is missing): run: %s (or make install)", ErrEChartsMissing, key, InstallCommand)
	}
	if err != nil {
		return "", fmt.Errorf("read the ECharts script: %w", err)
	}
	scripts[key] = string(b)
	return scripts[key], nil
}
