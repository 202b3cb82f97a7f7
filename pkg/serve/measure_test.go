package serve

import (
	"testing"

	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
)

// TestMeasureSmall runs the serving measurement at its smallest and checks its bookkeeping:
// every point timed, no compile during the timed runs (mixing never recompiles), and the
// task weights per method against their formulas.
func TestMeasureSmall(t *testing.T) {
	base := loadBase(t, bases.Text)
	m, err := Measure(MeasureConfig{Base: base, Backend: backendtest.Backend(t), Batch: 2, NewTokens: 2, PromptTokens: 8, Rank: 4,
		Repeats: 1, MemoryNs: []int{1, 3}})
	if err != nil {
		t.Fatal(err)
	}
	if want := 1 + 2*(len(Methods)-1); len(m.Points) != want {
		t.Fatalf("%d points, want %d", len(m.Points), want)
	}
	for _, p := range m.Points {
		if p.BatchMS <= 0 || p.TokensPerSecond <= 0 || p.VsBase <= 0 {
			t.Errorf("point %+v", p)
		}
	}
	if m.Compiles != 0 {
		t.Errorf("%d graphs compiled during the timed runs", m.Compiles)
	}
	d, blocks := int64(base.Config.Width), int64(base.Config.Blocks)
	want := map[string]int64{
		MethodAdaLink:    2 * d * 4 * 4,                // A [d, r] and B [r, d], float32
		MethodLoRA:       blocks * 2 * 4 * (d + d) * 4, // q and v of every block
		MethodLoRASingle: blocks * 2 * 4 * (d + d) * 4,
		MethodLoRAMerged: blocks * 2 * d * d * 4, // merged copies of q and v
		MethodFT:         m.BaseBytes,
	}
	for method, per := range want {
		for _, n := range []int{1, 3} {
			r, ok := m.Mem(method, n)
			if !ok || r.ParamBytes != per*int64(n) {
				t.Errorf("%s, N = %d: %+v, want %d bytes", method, n, r, per*int64(n))
			}
		}
	}
	if r, _ := m.Mem(MethodFT, 3); float64(r.HeapBytes) < 0.9*float64(r.ParamBytes) {
		t.Errorf("3 FT tasks grew the heap by only %d bytes, their weights are %d", r.HeapBytes, r.ParamBytes)
	}
	for _, tg := range m.Targets() {
		if !tg.Known {
			t.Errorf("target %q could not be checked", tg.What)
		}
	}
	if h, rows := m.TimeTable(); len(rows) != len(m.Points) || len(h) != len(rows[0]) {
		t.Error("time table")
	}
}
