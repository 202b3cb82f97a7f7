package serve

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
)

var (
	benchOnce  sync.Once
	benchE     *Engine
	benchNames map[string][]string
	benchErr   error
)

// benchEngine is the text base with benchK tasks of every method loaded, as Measure loads
// them.
const benchK, benchBatch, benchNew = 16, 16, 8

func benchEngine(b *testing.B) (*Engine, map[string][]string) {
	benchOnce.Do(func() {
		base, err := bases.Load(bases.Text)
		if err != nil {
			benchErr = err
			return
		}
		cfg := MeasureConfig{Base: base, Rank: 8}
		_ = cfg.defaults()
		benchE, benchErr = New(base, Options{Backend: backendtest.Backend(b), MaxBatch: benchBatch, MaxNew: benchNew, MaxNewLimit: benchNew, IgnoreEnd: true})
		if benchErr != nil {
			return
		}
		dir := b.TempDir()
		benchNames = map[string][]string{}
		for mi, method := range Methods[1:] {
			mc, opts, _ := cfg.methodConfig(method)
			for i := range benchK {
				name := fmt.Sprintf("m%d-%d", mi, i)
				d := filepath.Join(dir, name)
				if benchErr = SyntheticAdapter(d, base, name, mc, uint64(100*mi+i)); benchErr != nil {
					return
				}
				if _, benchErr = benchE.LoadWith(name, d, opts); benchErr != nil {
					return
				}
				benchNames[method] = append(benchNames[method], name)
			}
		}
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return benchE, benchNames
}

// BenchmarkBatch times one batch of 16 examples (24 prompt tokens, 8 generated tokens
// each) on the text base, per method and number K of distinct tasks in the batch. The
// notebook 06_serving and `go run ./cmd/serve -measure` run the same measurement with
// interleaved repeats (serve.Measure).
func BenchmarkBatch(b *testing.B) {
	e, names := benchEngine(b)
	prompt := e.Prompt("is this mail spam or ham? congratulations, you have been selected for a free cruise")
	for _, method := range Methods {
		for _, k := range []int{1, benchK} {
			if method == MethodBase && k > 1 {
				continue
			}
			b.Run(fmt.Sprintf("%s/K=%d", method, k), func(b *testing.B) {
				items := make([]Item, benchBatch)
				for i := range items {
					items[i] = Item{Tokens: prompt, MaxNew: benchNew}
					if method != MethodBase {
						items[i].Adapter = names[method][i%k]
					}
				}
				if _, err := e.Generate(items); err != nil { // compile outside the timing
					b.Fatal(err)
				}
				b.ResetTimer()
				for range b.N {
					res, err := e.Generate(items)
					if err != nil {
						b.Fatal(err)
					}
					if res[0].Err != nil {
						b.Fatal(res[0].Err)
					}
				}
				b.ReportMetric(float64(benchBatch*benchNew*b.N)/b.Elapsed().Seconds(), "tokens/s")
			})
		}
	}
}
