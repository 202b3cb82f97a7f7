package nbui

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step at every reading (Update reads it once).
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func textProgress(name string, total int, step time.Duration) (*Progress, *bytes.Buffer) {
	var out bytes.Buffer
	clk := &fakeClock{t: time.Unix(0, 0), step: step}
	p := &Progress{Text: &out, name: name, total: total, now: clk.now}
	p.start = p.now()
	return p, &out
}

// Outside a notebook a loop of 10,000 steps prints a handful of lines, not one per step.
func TestProgressTextIsSparse(t *testing.T) {
	p, out := textProgress("training", 10000, 10*time.Millisecond) // 10000 steps of 10ms: 100s
	for i := 1; i <= 10000; i++ {
		p.Update(i, "loss 0.42")
	}
	p.Done()
	p.Done() // idempotent
	p.Update(3, "late")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 5 || len(lines) > 13 {
		t.Errorf("%d lines, want between 5 and 13 (start, tenths, end):\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "training: 1/10000 (0%)") {
		t.Errorf("first line %q", lines[0])
	}
	last := lines[len(lines)-1]
	if !strings.Contains(last, "10000/10000 (100%)") || !strings.Contains(last, "done in 1m40s") || !strings.Contains(last, "loss 0.42") {
		t.Errorf("last line %q", last)
	}
	if strings.Contains(out.String(), "late") {
		t.Error("an update after Done was shown")
	}
}

// A slow loop with an unknown total still says something at least once a minute.
func TestProgressSlowUnknownTotal(t *testing.T) {
	p, out := textProgress("eval", 0, time.Minute)
	for i := 1; i <= 20; i++ { // 20 steps of a minute
		p.Update(i, "")
	}
	p.Done()
	n := strings.Count(out.String(), "\n")
	if n < 18 || n > 22 {
		t.Errorf("%d lines for 20 one-minute steps, want about one per minute:\n%s", n, out)
	}
	if strings.Contains(out.String(), "eta") || strings.Contains(out.String(), "%") {
		t.Errorf("no total: there should be no percentage or eta:\n%s", out)
	}
}

func TestProgressHTMLEscapes(t *testing.T) {
	p, _ := textProgress("<train>", 4, time.Second)
	p.step, p.status = 2, "loss <0.5> & falling"
	h := p.html(p.start.Add(10*time.Second), false)
	for _, want := range []string{"&lt;train&gt;", `<progress value="2" max="4"`, "2/4 (50%)", "eta 10.0s", "loss &lt;0.5&gt; &amp; falling"} {
		if !strings.Contains(h, want) {
			t.Errorf("progress HTML lacks %q:\n%s", want, h)
		}
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 12300 * time.Millisecond: "12.3s",
		125 * time.Second: "2m05s", 3720 * time.Second: "1h02m",
	} {
		if got := duration(d); got != want {
			t.Errorf("duration(%v) = %q, want %q", d, got, want)
		}
	}
}
