//go:build !unix

package serve

import "time"

// cpuTime is unknown here: Measure reports wall time only.
func cpuTime() time.Duration { return 0 }
