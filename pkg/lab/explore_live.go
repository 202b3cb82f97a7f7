package lab

import (
	"encoding/json"
	"fmt"
	"html"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/janpfeifer/gonb/gonbui"
	"github.com/janpfeifer/gonb/gonbui/comms"
	"github.com/peftlab/peftlab/pkg/mode"
	"github.com/peftlab/peftlab/pkg/nbui"
)

// The live explorer talks to the page over GoNB's comms (gonbui/comms, what gonbui/widgets
// are built on): the view is one output the cell updates in place (gonbui.UpdateHTML), and
// its controls send the whole selection, as JSON, to one address the cell listens to. It does
// not use gonbui/widgets themselves: each of those waits, without a time limit, for the page's
// first answer (which never comes headless), lives in DOM that is not saved, and cannot sit
// inside an output that is updated in place; here the view is re-rendered whole, controls
// included, at every change, and the cell gives up waiting for the page after
// helloTimeout, leaving the static view.

// helloTimeout is how long the cell waits for the page to answer its first view. GoNB installs
// its connection to the page when the cell first subscribes (up to a few seconds).
var helloTimeout = 20 * time.Second

// frontEnd is what a live explorer talks to: the page through GoNB, or a test.
type frontEnd interface {
	// show replaces the view.
	show(html string)
	// messages delivers the page's requests (pageMsg as JSON).
	messages() <-chan string
	// nudge asks for the connection to the page to be (re)made, while the cell waits for
	// the page's first answer.
	nudge()
}

// pageMsg is what the page's controls send: an operation, and the selection the controls
// show (the grid and the value index of each of its axes).
type pageMsg struct {
	Op   string `json:"op"` // hello, select, train, pin, unpin, close
	N    int    `json:"n"`  // the page's message counter, increasing
	Seq  int    `json:"seq"`
	Grid int    `json:"grid"`
	Sel  []int  `json:"sel"`
}

// show shows the explorer in the current cell (see Explorer): text outside a notebook, the
// static view headless, else the live explorer, then its static view.
func (x *explorer) show() error {
	if !gonbui.IsNotebook {
		x.text(os.Stdout, "a static view (outside a notebook)")
		return nil
	}
	// The ECharts script, once, in an output of its own before the view: every update of the
	// view carries only its charts (see nbui.Script).
	if script, err := nbui.Script(); err != nil {
		gonbui.DisplayHTML(`<pre style="color:#b00020;white-space:pre-wrap">explorer: ` + html.EscapeString(err.Error()) + ` (the charts show their static pictures)</pre>`)
	} else {
		gonbui.DisplayHTML(script)
	}
	id := "peftlab_explorer_" + gonbui.UniqueId()
	if mode.Headless() {
		gonbui.DisplayHTML(x.html(viewMode{id: id, reason: "A static view: this notebook runs headless (" + mode.EnvHeadless +
			"=1, set by go run ./kernel exec), where controls would wait for a page forever. Open the notebook in JupyterLab (make lab) and run this cell to explore."}))
		gonbui.Sync()
		return nil
	}
	page := newGoNBPage(id)
	reason := x.serve(page, id, helloTimeout)
	gonbui.UpdateHTML(id, x.html(viewMode{id: fmt.Sprintf("%s-final", id), reason: reason}))
	gonbui.Sync()
	return nil
}

// serve runs the live explorer on fe until it ends, and returns why it ended (the static
// view's reason): Close, the idle limit, an interrupt, or no page answering the first view
// within hello.
func (x *explorer) serve(fe frontEnd, id string, hello time.Duration) string {
	address := "/peftlab/explorer/" + id
	seq := 0
	render := func() {
		fe.show(x.html(viewMode{live: true, id: fmt.Sprintf("%s-%d", id, seq), address: address, seq: seq}))
		seq++
		if seq > 1 {
			fe.nudge() // keep GoNB's connection to the page alive for the page's next message
		}
	}
	idle := x.e.Idle
	if idle == 0 {
		idle = DefaultIdle
	}
	// An interrupt (Jupyter's stop button) ends the explorer with its static view. While a
	// point trains the loop does not listen: the static view is written from here, and the
	// program ends (the interrupted run is retrained from the start when asked again).
	var training atomic.Bool
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	interrupted := make(chan struct{}, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-interrupts:
		case <-stop:
			return
		}
		if training.Load() {
			fe.show(x.html(viewMode{id: id + "-interrupted", reason: "Interrupted while a point trained: its run is incomplete and trains again from the start when asked. Run the cell again to explore."}))
			gonbui.Sync()
			os.Exit(1)
		}
		interrupted <- struct{}{}
	}()

	render()
	msgs := fe.messages()
	// GoNB's page side gives up on a connection the kernel does not acknowledge within half a
	// second (a busy machine), and nothing makes a new one unless the cell talks to the page:
	// until the page answers, the cell asks for the connection every few seconds (and the page
	// repeats its first message until its view is replaced).
	deadline := time.After(hello)
	nudges := time.NewTicker(3 * time.Second)
	defer nudges.Stop()
wait:
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return "The page closed the connection: run the cell again to explore."
			}
			if x.handle(fe, m, render, &training) {
				return "Closed: run the cell again to explore."
			}
			break wait
		case <-nudges.C:
			fe.nudge()
		case <-deadline:
			return fmt.Sprintf("A static view: no page answered within %s (a notebook run without a browser, or a front end without GoNB's connection). Open the notebook in JupyterLab and run this cell to explore.", hello)
		case <-interrupted:
			return "Interrupted: run the cell again to explore."
		}
	}
	nudges.Stop()
	timer := time.NewTimer(idle)
	if idle < 0 {
		timer.Stop()
	}
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return "The page closed the connection: run the cell again to explore."
			}
			if x.handle(fe, m, render, &training) {
				return "Closed: run the cell again to explore."
			}
			if idle > 0 {
				timer.Reset(idle)
			}
		case <-timer.C:
			return fmt.Sprintf("Ended after %s without use: run the cell again to explore.", idle)
		case <-interrupted:
			return "Interrupted: run the cell again to explore."
		}
	}
}

// accept reports whether to apply a page message: the page's messages arrive in any order
// (GoNB delivers each on a goroutine of its own), and each carries the whole selection, so an
// older one (a lower counter) must not undo a newer one.
func (x *explorer) accept(m pageMsg) bool {
	if m.N != 0 && m.N <= x.lastN {
		return false
	}
	if m.N > x.lastN {
		x.lastN = m.N
	}
	return true
}

// handle applies one page message and shows the result; it reports whether the explorer is
// to end.
func (x *explorer) handle(fe frontEnd, raw string, render func(), training *atomic.Bool) (end bool) {
	var m pageMsg
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		x.note = "the page sent something unreadable: " + err.Error()
		render()
		return false
	}
	if !x.accept(m) {
		return false
	}
	x.note = ""
	if m.Grid != x.cur {
		if m.Grid >= 0 && m.Grid < len(x.grids) {
			x.cur = m.Grid // the controls showed the other grid's axes: keep this grid's selection
		}
	} else if m.Sel != nil {
		if err := x.choose(m.Grid, m.Sel); err != nil {
			x.note = err.Error()
		}
	}
	switch m.Op {
	case "hello", "select":
	case "pin":
		if p := x.selected(); p.state == pointStored {
			x.pin = &xsel{grid: x.cur, idx: append([]int(nil), x.grids[x.cur].sel...)}
		}
	case "unpin":
		x.pin = nil
	case "close":
		return true
	case "train":
		p := x.selected()
		if p.state != pointMissing {
			break
		}
		x.status = "training"
		render()
		runs, steps := x.toTrain(p)
		progress, report := progressFor("training "+pointKey(p.labels), runs, steps)
		training.Store(true)
		err := x.train(report)
		training.Store(false)
		progress.Done()
		x.status = ""
		if err != nil {
			x.note = "training " + pointKey(p.labels) + ": " + err.Error()
		}
	default:
		x.note = "the page asked for " + strconv.Quote(m.Op) + ", which the explorer does not know"
	}
	render()
	return false
}

// gonbPage is the page as GoNB's comms reach it.
type gonbPage struct {
	id string
	ch *comms.AddressChan[string]
}

func newGoNBPage(id string) *gonbPage {
	return &gonbPage{id: id, ch: comms.Listen[string]("/peftlab/explorer/" + id)}
}

func (g *gonbPage) show(html string) {
	gonbui.UpdateHTML(g.id, html)
	gonbui.Sync()
}

func (g *gonbPage) messages() <-chan string { return g.ch.C }

// nudge makes GoNB check its connection to the page and install it again if it is gone.
func (g *gonbPage) nudge() { comms.Start() }

// liveScript binds a live view's controls: each change sends the whole selection to the
// cell and disables the controls until the cell's next view replaces this one.
func liveScript(m viewMode) string {
	id, _ := json.Marshal(m.id)
	return `<script>
(() => {
const root = document.getElementById(` + string(id) + `);
if (!root || root.__peftlabBound) { return; }
root.__peftlabBound = true;
const address = root.dataset.address;
const seq = Number(root.dataset.seq);
const grid = root.querySelector('[data-pe-grid]');
const axes = Array.from(root.querySelectorAll('[data-pe-axis]'));
const status = root.querySelector('.peftlab-explorer-status');
const say = (text) => { if (status) { status.textContent = text; } };
const freeze = () => { for (const c of root.querySelectorAll('select, input, button')) { c.disabled = true; } };
const message = (op) => {
	globalThis.__peftlabExplorerN = (globalThis.__peftlabExplorerN || 0) + 1;
	return JSON.stringify({op: op, n: globalThis.__peftlabExplorerN, seq: seq,
		grid: grid ? Number(grid.value) : Number(root.dataset.gridIndex), sel: axes.map(c => Number(c.value))});
};
// The pending message goes to the kernel through whatever connection GoNB has now (GoNB
// replaces a failed one), again every second and a half until the cell's next view replaces
// this one: the cell ignores a message it has seen (by its counter).
let pending = null;
const deliver = () => { const c = globalThis.gonb_comm; if (pending && c) { c.send(address, pending); } };
const started = Date.now();
const timer = setInterval(() => {
	if (!document.body.contains(root) || Date.now() - started > 120000) { clearInterval(timer); return; }
	deliver();
}, 1500);
const send = (op, text) => {
	pending = message(op);
	deliver();
	freeze();
	say(text);
	setTimeout(() => { if (document.body.contains(root)) { say('the explorer does not answer: is its cell still running? Run the cell again.'); } }, 30000);
};
for (const c of axes) {
	if (c.type === 'range') {
		const labels = JSON.parse(c.dataset.peLabels || '[]');
		const out = c.parentElement.querySelector('output');
		c.addEventListener('input', () => { if (out) { out.textContent = labels[Number(c.value)]; } });
	}
	c.addEventListener('change', () => send('select', 'loading…'));
}
if (grid) { grid.addEventListener('change', () => send('select', 'loading…')); }
for (const btn of root.querySelectorAll('[data-pe-op]')) {
	const op = btn.dataset.peOp;
	btn.addEventListener('click', () => send(op, op === 'train' ? 'starting to train…' : op === 'close' ? 'closing…' : '…'));
}
if (seq === 0) {
	pending = message('hello');
	deliver();
	setTimeout(() => { if (document.body.contains(root)) { freeze(); say('no connection to the kernel: is the cell still running? Run it again.'); } }, 30000);
}
})();
</script>
`
}
