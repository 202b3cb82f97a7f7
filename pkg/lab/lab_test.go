package lab

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/trainer"
)

// small is a text-only base of the plan tests: 3 blocks so that collapsing block numbers shows.
var small = model.Config{Name: "small", Vocab: 50, Width: 16, Heads: 2, Blocks: 3, MLPDim: 32, MaxLen: 16}

func mustModel(t *testing.T, c model.Config, m peft.Method) *peft.Model {
	t.Helper()
	pm, err := peft.New(c.Layout(), peft.Adapter{Name: "a", Method: m})
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func TestPlanRow(t *testing.T) {
	total := small.Layout().NumParams()
	d, r := small.Width, 4

	got := PlanRow("LoRA q,v", mustModel(t, small, lora.Config{Rank: r}))
	loraParams := small.Blocks * 2 * r * (d + d) // r·(in+out) per matrix, q and v in each block
	want := []string{"LoRA q,v", "LORA", "block/*/attn/q, block/*/attn/v", fmt.Sprint(2 * 2 * small.Blocks),
		fmt.Sprint(loraParams), percent(loraParams, total+loraParams)}
	if !slices.Equal(got, want) {
		t.Errorf("LoRA row\n got %q\nwant %q", got, want)
	}

	got = PlanRow("AdaLink", mustModel(t, small, adalink.Config{Rank: r}))
	if got[2] != "input/text" || got[3] != "2" || got[4] != fmt.Sprint(2*d*r) {
		t.Errorf("AdaLink row %q: want where input/text, 2 weights, %d params", got, 2*d*r)
	}

	got = PlanRow("FT", mustModel(t, small, full.Config{Preset: "all"}))
	if got[4] != fmt.Sprint(total) || got[5] != "100.0%" {
		t.Errorf("FT-all row %q: want %d trainable = 100.0%%", got, total)
	}
	// Every weight: more places than the column lists, so it is elided and counted.
	if !strings.Contains(got[2], "more)") || !strings.HasPrefix(got[2], "embed/text") {
		t.Errorf("FT-all where = %q, want the first places and a count of the rest", got[2])
	}
	// A shared AdaLink pair has no site of its own: the row names the sites it runs at.
	mm := small
	mm.ImageSize, mm.PatchSize, mm.Channels = 8, 4, 3
	got = PlanRow("shared", mustModel(t, mm, adalink.Config{Rank: r, Shared: true}))
	if got[2] != "input/text, input/image" || got[4] != fmt.Sprint(2*d*r) {
		t.Errorf("shared AdaLink row %q: want both inputs and %d params", got, 2*d*r)
	}
	// Two adapters in one model: both methods, both places.
	pm, err := peft.New(mm.Layout(), peft.Adapter{Name: "a", Method: adalink.Config{Rank: r, Modalities: []string{"image"}}},
		peft.Adapter{Name: "l", Method: lora.Config{Rank: r, Targets: []string{"block/0/attn/q"}}})
	if err != nil {
		t.Fatal(err)
	}
	got = PlanRow("both", pm)
	if got[1] != "ADALINK+LORA" || got[2] != "input/image, block/*/attn/q" {
		t.Errorf("composed row %q", got)
	}
	if n := len(PlanHeader); n != len(got) {
		t.Errorf("PlanHeader has %d columns, rows %d", n, len(got))
	}
}

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		part, total int
		want        string
	}{{1, 0, "–"}, {0, 10, "0.0%"}, {1, 1, "100.0%"}, {5, 100, "5.00%"}, {1, 2400, "0.0417%"}, {25, 100, "25.0%"}} {
		if got := percent(c.part, c.total); got != c.want {
			t.Errorf("percent(%d, %d) = %q, want %q", c.part, c.total, got, c.want)
		}
	}
}

func TestElide(t *testing.T) {
	if got := elide([]string{"a", "b"}, 4); got != "a, b" {
		t.Errorf("got %q", got)
	}
	if got := elide([]string{"a", "b", "c", "d", "e", "f"}, 4); got != "a, b, c, … (3 more)" {
		t.Errorf("got %q", got)
	}
}

// record makes a record with the given step times and losses.
func record(seconds []float64, evals ...float64) *trainer.Record {
	rec := &trainer.Record{TrainableParams: 128, PlannedTotal: 1024,
		Adapters: []trainer.AdapterRecord{{Name: "a", Type: "ADALINK"}}}
	for i, s := range seconds {
		rec.Steps = append(rec.Steps, trainer.StepPoint{Step: i, Loss: 2 - 0.1*float64(i), Seconds: s})
	}
	for i, e := range evals {
		rec.Evals = append(rec.Evals, trainer.EvalPoint{Step: i * len(seconds) / max(1, len(evals)-1), Metrics: trainer.Metrics{Loss: e}})
	}
	return rec
}

func TestStepTime(t *testing.T) {
	for _, c := range []struct {
		secs []float64
		want time.Duration
	}{
		{nil, 0},
		{[]float64{5}, 0},
		{[]float64{9, 0.1}, 100 * time.Millisecond},
		// The first step (compilation) is left out; the median ignores the stall.
		{[]float64{30, 0.2, 0.1, 4, 0.3}, 250 * time.Millisecond},
		{[]float64{30, 0.2, 0.1, 4}, 200 * time.Millisecond},
	} {
		got := Run{Record: record(c.secs)}.StepTime()
		if d := got - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("StepTime(%v) = %v, want %v", c.secs, got, c.want)
		}
	}
	if (Run{}).StepTime() != 0 {
		t.Error("a run without record has a step time")
	}
}

func TestMethod(t *testing.T) {
	r := Run{Record: &trainer.Record{Adapters: []trainer.AdapterRecord{
		{Type: "ADALINK"}, {Type: "LORA"}, {Type: "ADALINK"}, {Type: "PROMPT_TUNING", Frozen: true}}}}
	if got := r.Method(); got != "ADALINK+LORA" {
		t.Errorf("Method = %q, want ADALINK+LORA (frozen adapters do not train)", got)
	}
	if got := (Run{Record: &trainer.Record{}}).Method(); got != "every weight" {
		t.Errorf("Method without adapters = %q", got)
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "–", 1500 * time.Nanosecond: "1.5 µs",
		123456 * time.Microsecond: "123 ms", 2500 * time.Millisecond: "2.5 s"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestTrailingMean(t *testing.T) {
	got := TrailingMean([]float64{1, 2, 3, 4, 5}, 2)
	want := []float64{1, 1.5, 2.5, 3.5, 4.5}
	if !slices.Equal(got, want) {
		t.Errorf("TrailingMean = %v, want %v", got, want)
	}
	if got := TrailingMean([]float64{1, 2}, 0); !slices.Equal(got, []float64{1, 2}) {
		t.Errorf("window 0 must not smooth: %v", got)
	}
	got = TrailingMean([]float64{1, math.NaN(), 3, 4, 5}, 2)
	if !math.IsNaN(got[1]) || !math.IsNaN(got[2]) || got[3] != 3.5 {
		t.Errorf("a NaN must show in the windows that hold it and only there: %v", got)
	}
	if Smoothing(10) != 1 || Smoothing(200) != 10 {
		t.Errorf("Smoothing(10) = %d, Smoothing(200) = %d", Smoothing(10), Smoothing(200))
	}
}

func TestCurves(t *testing.T) {
	runs := []Run{
		{Name: "AdaLink", Record: record([]float64{1, 1, 1, 1}, 2, 1)},
		{Name: "LoRA", Record: record([]float64{1, 1})}, // never evaluated: no eval curve
		{Name: "empty"}, // no record: skipped
	}
	c := Curves("losses", runs...)
	var names []string
	for _, s := range c.MultiSeries {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"AdaLink", "AdaLink (eval)", "LoRA"}) {
		t.Fatalf("series %q", names)
	}
	s := c.MultiSeries
	if s[0].LineStyle.Color != s[1].LineStyle.Color || s[0].LineStyle.Color == s[2].LineStyle.Color {
		t.Errorf("a run's curves share a colour and runs differ: %s %s %s", s[0].LineStyle.Color, s[1].LineStyle.Color, s[2].LineStyle.Color)
	}
	if s[0].LineStyle.Type != "" || s[1].LineStyle.Type != "dashed" {
		t.Errorf("training solid, eval dashed: %q %q", s[0].LineStyle.Type, s[1].LineStyle.Type)
	}
	// The chart renders to a page (the ECharts script is only needed when it is installed).
	var buf bytes.Buffer
	if err := c.Render(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"AdaLink (eval)"`) || !strings.Contains(buf.String(), `"dashed"`) {
		t.Errorf("rendered chart lacks the eval series or its style")
	}
}

func TestSiteRows(t *testing.T) {
	mm := small
	mm.ImageSize, mm.PatchSize, mm.Channels = 8, 4, 3
	mm.Classes = 2
	rows := SiteRows(mm.Layout())
	d := fmt.Sprint(mm.Width)
	want := [][]string{
		{"input/text", "input", d, d, "text", "1"},
		{"input/image", "input", d, d, "image", "1"},
		{"embed/image/patch", "linear", "48", d, "", "1"},
		{"block/*/attn/q", "linear", d, d, "", "3"},
	}
	for i, w := range want {
		if !slices.Equal(rows[i], w) {
			t.Errorf("row %d = %q, want %q", i, rows[i], w)
		}
	}
	n := 0
	for _, r := range rows {
		var c int
		fmt.Sscan(r[5], &c)
		n += c
	}
	if n != len(mm.Layout().Sites) {
		t.Errorf("rows count %d sites, the layout has %d", n, len(mm.Layout().Sites))
	}
	if last := rows[len(rows)-1]; last[0] != "head/lm" && last[0] != "head/cls" {
		t.Errorf("last row %q, want a head", last)
	}
}

func TestShowPlanText(t *testing.T) {
	// Outside a notebook ShowPlan prints the plan's text form to stdout.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	p := mustModel(t, small, adalink.Config{Rank: 2}).Plan()
	ShowPlan(p)
	os.Stdout = stdout
	w.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r); err != nil {
		t.Fatal(err)
	}
	if buf.String() != p.String() {
		t.Errorf("ShowPlan printed\n%s\nwant\n%s", buf.String(), p.String())
	}
}
