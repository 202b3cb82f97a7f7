package nbui

import (
	"fmt"
	"html"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
)

// Progress is a live progress display for a long loop. In a notebook it is one output block
// updated in place (at most a few times a second, however often Update is called); outside a
// notebook it prints a few text lines (the start, every tenth of the way at most once a second,
// at least once a minute, and the end) instead of one per step.
//
//	p := nbui.NewProgress("training", steps)
//	for step := 1; step <= steps; step++ {
//		...
//		p.Update(step, fmt.Sprintf("loss %.3f", loss))
//	}
//	p.Done()
//
// The methods are safe to call from several goroutines.
type Progress struct {
	// Text receives the lines printed outside a notebook; os.Stderr when nil.
	Text io.Writer

	name  string
	total int
	id    string // the notebook output block's display id

	mu               sync.Mutex
	now              func() time.Time // the clock, replaced in tests
	notebook         bool
	start, lastShown time.Time
	shownOnce, done  bool
	lastTenth        int
	step             int
	status           string
}

// How often the display changes: in a notebook every update costs a message to the browser;
// outside one, every line is read by a person.
const (
	notebookEvery = 250 * time.Millisecond
	textMinGap    = time.Second
	textMaxGap    = time.Minute
)

// NewProgress starts a progress display for a loop of total steps (0 or less when the total is
// not known).
func NewProgress(name string, total int) *Progress {
	p := &Progress{name: name, total: total, now: time.Now, notebook: gonbui.IsNotebook}
	p.start = p.now()
	if p.notebook {
		p.id = "nbui_progress_" + gonbui.UniqueId()
	}
	return p
}

// Update records that step steps are done, with a short status such as "loss 0.42", and
// refreshes the display if it is due.
func (p *Progress) Update(step int, status string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.step, p.status = step, status
	now := p.now()
	since := now.Sub(p.lastShown)
	if p.notebook {
		if !p.shownOnce || since >= notebookEvery || (p.total > 0 && step >= p.total) {
			p.show(now, false)
		}
		return
	}
	tenth := p.tenth()
	if !p.shownOnce || since >= textMaxGap || (tenth > p.lastTenth && since >= textMinGap) {
		p.show(now, false)
	}
}

// Done shows the final state with the total time. Further calls do nothing.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return
	}
	p.done = true
	p.show(p.now(), true)
	if p.notebook {
		gonbui.Sync() // the last display messages can be lost when the cell program exits
	}
}

func (p *Progress) tenth() int {
	if p.total <= 0 {
		return 0
	}
	return min(10, 10*p.step/p.total)
}

func (p *Progress) show(now time.Time, final bool) {
	p.shownOnce, p.lastShown, p.lastTenth = true, now, p.tenth()
	if p.notebook {
		gonbui.UpdateHTML(p.id, p.html(now, final))
		return
	}
	w := p.Text
	if w == nil {
		w = os.Stderr
	}
	fmt.Fprintln(w, p.line(now, final))
}

// facts are the pieces of the display after the name: counts, rate, times, status.
func (p *Progress) facts(now time.Time, final bool) []string {
	elapsed := now.Sub(p.start)
	var f []string
	if p.total > 0 {
		f = append(f, fmt.Sprintf("%d/%d (%d%%)", p.step, p.total, 100*min(p.step, p.total)/p.total))
	} else {
		f = append(f, fmt.Sprintf("%d", p.step))
	}
	if secs := elapsed.Seconds(); secs > 0 && p.step > 0 {
		f = append(f, fmt.Sprintf("%.3g steps/s", float64(p.step)/secs))
	}
	switch {
	case final:
		f = append(f, "done in "+duration(elapsed))
	case p.total > 0 && p.step > 0 && p.step < p.total:
		eta := time.Duration(float64(elapsed) * float64(p.total-p.step) / float64(p.step))
		f = append(f, duration(elapsed)+" elapsed", "eta "+duration(eta))
	default:
		f = append(f, duration(elapsed)+" elapsed")
	}
	if p.status != "" {
		f = append(f, p.status)
	}
	return f
}

func (p *Progress) line(now time.Time, final bool) string {
	return p.name + ": " + strings.Join(p.facts(now, final), ", ")
}

func (p *Progress) html(now time.Time, final bool) string {
	var b strings.Builder
	b.WriteString(`<div style="font-family:monospace;white-space:pre-wrap">`)
	fmt.Fprintf(&b, "<b>%s</b> ", html.EscapeString(p.name))
	if p.total > 0 {
		fmt.Fprintf(&b, `<progress value="%d" max="%d" style="width:240px;vertical-align:middle"></progress> `,
			min(max(p.step, 0), p.total), p.total)
	}
	b.WriteString(html.EscapeString(strings.Join(p.facts(now, final), " · ")))
	b.WriteString("</div>")
	return b.String()
}

// duration formats a duration for people: 850ms, 12.3s, 2m05s, 1h02m.
func duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
