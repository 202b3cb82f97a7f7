package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/nbui/nbuitest"
)

// The JupyterLab browser test: headless Chromium, driven over the DevTools protocol (cdp_test.go),
// uses JupyterLab as a researcher does. It opens notebooks/00_welcome.ipynb (a copy, in a
// temporary tree whose other entries link to the checkout, so that the notebook's
// `${GONB_DIR}/..` replace still names the checkout and the committed file is never touched),
// picks the "Go (peftlab)" kernel in JupyterLab's kernel dialog, runs all cells, and checks what
// the page shows: no cell failed (the same checks as `kernel exec`, on the notebook model),
// every chart has an ECharts instance that drew pixels, every progress display finished, and no
// request left 127.0.0.1. It then saves, closes and reopens the notebook and checks the saved
// charts again, in the saved (trusted) notebook and in an untrusted copy of it, where JupyterLab
// runs no scripts. Screenshots go to out/jupyterlab/.
//
// It needs JupyterLab (`go run ./kernel install`), Debian's chromium (`install -test`) and the
// ECharts scripts; without them it is skipped, except under CI=true, where it fails.

const labNotebook = "00_welcome.ipynb"

// labPanelJS finds the notebook panel of a path among JupyterLab's main-area widgets.
const labPanelJS = `function labPanel(path) {
	for (const w of window.jupyterapp.shell.widgets('main')) {
		if (w.context && w.context.path === path && w.content && w.content.model) { return w; }
	}
	return null;
}
// kernelAnswers resolves to true when the panel's kernel is connected and answered
// kernel_info (GoNB reports no status until it executes something: the status stays "unknown").
async function kernelAnswers(p) {
	const k = p && p.sessionContext.session && p.sessionContext.session.kernel;
	if (!k || k.connectionStatus !== 'connected' || !['idle', 'unknown'].includes(k.status)) { return false; }
	const info = await Promise.race([k.info, new Promise(r => setTimeout(() => r(null), 2000))]);
	return !!info && info.status === 'ok';
}
`

// The page-side checks. Each is an expression whose value the test decodes.
const (
	// labCellsDoneJS is true when every code cell of the notebook has run and the kernel is idle.
	labCellsDoneJS = `(() => {
	const p = labPanel(%q);
	if (!p || !p.sessionContext.session || !p.sessionContext.session.kernel) { return false; }
	if (p.sessionContext.session.kernel.status !== 'idle') { return false; }
	for (const c of p.content.widgets) {
		if (c.model.type !== 'code' || c.model.sharedModel.getSource().trim() === '') { continue; }
		if (c.model.executionCount === null || c.node.querySelector('.jp-InputPrompt').textContent.includes('*')) { return false; }
	}
	return true;
})()`

	// labChartsJS describes every nbui chart in the notebook's outputs: the chart ids its
	// outputs' HTML declares, and for each chart div in the page whether nbui marked it
	// rendered, whether ECharts has an instance on it, how many series that instance has and
	// how many of its canvas pixels are painted.
	labChartsJS = `(() => {
	const p = labPanel(%q);
	const declared = [];
	for (const c of p.content.widgets) {
		if (c.model.type !== 'code') { continue; }
		const outs = c.model.outputs;
		for (let i = 0; i < outs.length; i++) {
			const html = outs.get(i).data['text/html'];
			const text = Array.isArray(html) ? html.join('') : (html || '');
			for (const m of text.matchAll(/const el = document\.getElementById\("([^"]+)"\)/g)) { declared.push(m[1]); }
		}
	}
	const charts = declared.map(id => {
		const el = p.content.node.querySelector('#' + CSS.escape(id));
		const r = {id: id, present: !!el, state: el ? (el.getAttribute('data-nbui-chart') || '') : '', instance: false, series: 0, painted: 0, svg: false, text: ''};
		if (!el) { return r; }
		r.text = el.textContent.slice(0, 200);
		const inst = window.echarts && window.echarts.getInstanceByDom(el);
		if (inst) {
			r.instance = true;
			r.series = (inst.getOption().series || []).length;
		}
		const canvas = el.querySelector('canvas');
		if (canvas && canvas.width > 0 && canvas.height > 0) {
			const d = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
			for (let i = 3; i < d.length; i += 4) { if (d[i] !== 0) { r.painted++; } }
		}
		return r;
	});
	// The static pictures nbui puts in each chart's div (the live chart replaces its picture):
	// those shown, that is decoded and laid out.
	const pictures = Array.from(p.content.node.querySelectorAll('.jp-OutputArea img.nbui-static'))
		.filter(i => i.complete && i.naturalWidth > 0 && i.offsetWidth > 0).length;
	// Chart divs left over from before a close (marked by markCharts): a reopened notebook
	// must draw its charts anew.
	const stale = charts.filter(c => { const el = p.content.node.querySelector('#' + CSS.escape(c.id)); return el && el.__peftlabStale; }).length;
	return {charts: charts, pictures: pictures, stale: stale};
})()`

	// labProgressJS describes every progress display in the page: its bar and its text.
	labProgressJS = `(() => {
	const p = labPanel(%q);
	return Array.from(p.content.node.querySelectorAll('.jp-OutputArea progress')).map(e => ({
		value: e.value, max: e.max, text: e.parentElement.textContent,
	}));
})()`
)

type labChart struct {
	ID       string
	Present  bool
	State    string
	Instance bool
	Series   int
	Painted  int
	Text     string
}

type labCharts struct {
	Charts   []labChart
	Pictures int
	Stale    int
}

type labProgress struct {
	Value, Max float64
	Text       string
}

// labSession is one running JupyterLab with a browser page on it.
type labSession struct {
	t       *testing.T
	ctx     context.Context
	b       *browser
	page    string // CDP session of the page
	base    string // http://127.0.0.1:PORT
	token   string
	shots   string // screenshot directory
	mu      sync.Mutex
	urls    []string // every URL the page (and its workers) requested
	errs    []string // uncaught exceptions in the page
	shotSeq int
}

// browserSetup checks what a JupyterLab browser test needs (the kernel, Chromium, JupyterLab,
// the ECharts scripts; skipped, or failed under CI, without them) and empties its screenshot
// directory under the checkout. It returns Chromium's path, the checkout and that directory.
func browserSetup(t *testing.T, shotsDir ...string) (chrome, root, shots string) {
	t.Helper()
	needKernel(t)
	chrome = nbuitest.Chromium(t)
	if !haveJupyter("lab") {
		nbuitest.SkipOrFail(t, "JupyterLab is not installed (only the classic Notebook, Debian's fallback where PyPI is unreachable): run `go run ./kernel install`")
	}
	if !nbui.EChartsInstalled() {
		nbuitest.SkipOrFail(t, "the ECharts scripts are not installed: run `go run ./kernel install`")
	}
	root = moduleRoot("..")
	if root == "" {
		t.Fatal("not inside the checkout")
	}
	shots = filepath.Join(append([]string{root}, shotsDir...)...)
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(shots, "*.png"))
	for _, f := range old {
		os.Remove(f)
	}
	return chrome, root, shots
}

func TestJupyterLabInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the JupyterLab browser test takes a minute or two")
	}
	chrome, root, shots := browserSetup(t, "out", "jupyterlab")
	dir := labTree(t, root, map[string][]byte{labNotebook: mustRead(t, filepath.Join(root, "notebooks", labNotebook))})

	// The whole test is bounded: every wait below has its own limit, and this one stops
	// everything (browser, server, kernel, cell programs) whatever hangs.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startLab(t, ctx, dir, filepath.Join(shots, "jupyterlab.log"))
	ls := &labSession{t: t, ctx: ctx, base: fmt.Sprintf("http://127.0.0.1:%d", s.Port), token: s.Token, shots: shots}
	ls.open(chrome)
	defer ls.b.close()
	defer func() {
		if t.Failed() {
			ls.shot("failed")
		}
	}()

	// 1. Open the notebook: its metadata names the peftlab kernel, which JupyterLab starts.
	ls.navigate("/lab/tree/" + labNotebook)
	ls.wait("the notebook and its kernel", fmt.Sprintf(`(() => { const p = labPanel(%q); return p && p.context.isReady && p.sessionContext.isReady && kernelAnswers(p); })()`, labNotebook), 90*time.Second)
	var display string
	ls.eval(fmt.Sprintf(`labPanel(%q).sessionContext.kernelDisplayName`, labNotebook), &display)
	if display != kernelDisplay {
		t.Errorf("JupyterLab started the kernel %q for the notebook, want %q (the notebook's metadata)", display, kernelDisplay)
	}

	// 2. Pick "Go (peftlab)" in the kernel dialog (the toolbar's kernel name opens it), as a
	// researcher switching kernels would: a new kernel of that spec starts.
	var oldID string
	ls.eval(fmt.Sprintf(`labPanel(%q).sessionContext.session.kernel.id`, labNotebook), &oldID)
	ls.eval(fmt.Sprintf(`(() => { labPanel(%q).node.querySelector('.jp-KernelName jp-button, .jp-KernelName button').click(); return true; })()`, labNotebook), nil)
	ls.wait("the kernel dialog", `document.querySelector('.jp-Dialog select') !== null`, 20*time.Second)
	var picked string
	ls.eval(fmt.Sprintf(`(() => {
		const sel = document.querySelector('.jp-Dialog select');
		const opt = Array.from(sel.options).find(o => o.textContent === %q && o.value.includes('"name"'));
		if (!opt) { throw new Error('no option ' + %q + ' in the kernel dialog: ' + Array.from(sel.options).map(o => o.textContent).join(', ')); }
		sel.value = opt.value;
		sel.dispatchEvent(new Event('change', {bubbles: true}));
		return opt.value;
	})()`, kernelDisplay, kernelDisplay), &picked)
	if picked != `{"name":"`+kernelName+`"}` {
		t.Errorf("the dialog's %q option starts %s, want the %q kernelspec", kernelDisplay, picked, kernelName)
	}
	ls.shot("kernel-dialog")
	ls.eval(`(() => { document.querySelector('.jp-Dialog .jp-mod-accept').click(); return true; })()`, nil)
	ls.wait("the picked kernel", fmt.Sprintf(`(() => { const p = labPanel(%q); const k = p.sessionContext.session && p.sessionContext.session.kernel; return document.querySelector('.jp-Dialog') === null && k && k.id !== %q && k.name === %q && kernelAnswers(p); })()`, labNotebook, oldID, kernelName), 60*time.Second)

	// 3. Run all cells (the Run menu's "Run All Cells" command) and wait for every cell.
	start := time.Now()
	ls.eval(`window.jupyterapp.commands.execute('notebook:run-all-cells').then(() => true)`, nil)
	ls.wait("every cell to run", fmt.Sprintf(labCellsDoneJS, labNotebook), 5*time.Minute)
	t.Logf("all cells ran in %.1fs", time.Since(start).Seconds())
	time.Sleep(time.Second) // let the last outputs' scripts run and the charts draw
	ls.scrollToCharts()
	ls.shot("ran")

	// 4. What the page shows after the run.
	nb := ls.model()
	if fails := inspect(nb); len(fails) > 0 {
		for _, f := range fails {
			t.Errorf("after Run All: %s", f)
		}
	}
	ls.checkCharts("after Run All", true)
	var progress []labProgress
	ls.eval(fmt.Sprintf(labProgressJS, labNotebook), &progress)
	if len(progress) == 0 {
		t.Errorf("after Run All: no progress display in the page (the welcome notebook shows one)")
	}
	for i, p := range progress {
		if p.Max <= 0 || p.Value != p.Max || !strings.Contains(p.Text, "done in") {
			t.Errorf("after Run All: progress display %d did not finish: bar %v/%v, %q", i+1, p.Value, p.Max, p.Text)
		}
	}

	// 5. Save, close and reopen: JupyterLab signs what it saves (the outputs are the user's
	// own), so the reopened notebook is trusted and its chart scripts run again.
	ls.eval(`window.jupyterapp.commands.execute('docmanager:save').then(() => true)`, nil)
	ls.wait("the save", fmt.Sprintf(`!labPanel(%q).model.dirty`, labNotebook), 30*time.Second)
	saved, err := readNotebook(filepath.Join(dir, labNotebook))
	if err != nil {
		t.Fatal(err)
	}
	if fails := inspect(saved); len(fails) > 0 {
		t.Errorf("the saved notebook has failed cells: %v", fails)
	}
	if n := strings.Count(string(mustRead(t, filepath.Join(dir, labNotebook))), `const el = document.getElementById(`); n == 0 {
		t.Errorf("the saved notebook has no chart output")
	}
	ls.eval(fmt.Sprintf(`(() => { for (const el of labPanel(%q).content.node.querySelectorAll('[data-nbui-chart]')) { el.__peftlabStale = true; } return true; })()`, labNotebook), nil)
	ls.eval(`window.jupyterapp.commands.execute('application:close-all').then(() => true)`, nil)
	ls.wait("the notebook to close", fmt.Sprintf(`labPanel(%q) === null`, labNotebook), 30*time.Second)
	ls.eval(fmt.Sprintf(`window.jupyterapp.commands.execute('docmanager:open', {path: %q}).then(() => true)`, labNotebook), nil)
	ls.wait("the notebook to reopen", fmt.Sprintf(`(() => { const p = labPanel(%q); return p && p.context.isReady && p.content.widgets.length > 0; })()`, labNotebook), 60*time.Second)
	time.Sleep(2 * time.Second)
	ls.scrollToCharts()
	ls.shot("reopened")
	ls.checkCharts("after save, close and reopen", true)

	// 6. The same outputs in a notebook JupyterLab did not save (an executed notebook from
	// `kernel exec`, or one from someone else): untrusted, so JupyterLab runs none of their
	// scripts and shows sanitized HTML. The charts must still show something, not an empty box.
	untrusted := "01_untrusted_copy.ipynb"
	var raw map[string]any
	if err := json.Unmarshal(mustRead(t, filepath.Join(dir, labNotebook)), &raw); err != nil {
		t.Fatal(err)
	}
	raw["metadata"].(map[string]any)["peftlab_test"] = "an unsigned copy"
	data, _ := json.MarshalIndent(raw, "", " ")
	if err := os.WriteFile(filepath.Join(dir, untrusted), data, 0o644); err != nil {
		t.Fatal(err)
	}
	ls.eval(fmt.Sprintf(`window.jupyterapp.commands.execute('docmanager:open', {path: %q}).then(() => true)`, untrusted), nil)
	ls.wait("the untrusted copy to open", fmt.Sprintf(`(() => { const p = labPanel(%q); return p && p.context.isReady && p.content.widgets.length > 0; })()`, untrusted), 60*time.Second)
	time.Sleep(2 * time.Second)
	var trusted []bool
	ls.eval(fmt.Sprintf(`labPanel(%q).content.widgets.filter(c => c.model.type === 'code').map(c => c.model.trusted)`, untrusted), &trusted)
	t.Logf("untrusted copy: cells trusted = %v", trusted)
	ls.checkChartsAt(untrusted, "in an untrusted copy", false)
	ls.scrollToChartsAt(untrusted)
	ls.shot("untrusted")

	// 7. Nothing the page loaded came from anywhere but this JupyterLab.
	ls.checkLocalOnly()
}

// checkLocalOnly checks that every request the page (and its workers) made went to this
// JupyterLab: the watch is checked first, a request the test makes to another host must be
// seen (and fail).
func (ls *labSession) checkLocalOnly() {
	t := ls.t
	t.Helper()
	const probe = "https://example.com/peftlab-network-probe.js"
	var probeFailed bool
	ls.eval(fmt.Sprintf(`fetch(%q).then(() => false, () => true)`, probe), &probeFailed)
	if !probeFailed {
		t.Errorf("a request to %s succeeded: the browser is not cut off from the network", probe)
	}
	time.Sleep(500 * time.Millisecond)
	ls.mu.Lock()
	defer ls.mu.Unlock()
	local, seen := 0, false
	for _, u := range ls.urls {
		switch {
		case u == probe:
			seen = true
		case localURL(u, ls.base):
			local++
		default:
			t.Errorf("the page requested %s: only 127.0.0.1 may be reached", u)
		}
	}
	if !seen || local == 0 {
		t.Errorf("the network watch saw %d local requests and the probe: %v; it does not work", local, seen)
	}
	t.Logf("%d requests, all to %s (or data:/blob:)", local, ls.base)
	for _, e := range ls.errs {
		t.Logf("uncaught exception in the page: %s", e)
	}
}

// localURL reports whether a URL the page requested stays on this machine's JupyterLab (or in
// the page: data:, blob:, about:).
func localURL(u, base string) bool {
	ws := "ws" + strings.TrimPrefix(base, "http")
	for _, p := range []string{base + "/", ws + "/", "data:", "blob:", "about:"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// labTree makes the temporary tree JupyterLab serves: notebooks/ with the given notebooks (name
// to content), and links to the checkout's module files and packages beside it, so that a
// notebook's `${GONB_DIR}/..` replace names the checkout and no committed file is touched.
func labTree(t *testing.T, root string, notebooks map[string][]byte) string {
	t.Helper()
	tree := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "notebooks", "out", ".git":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(tree, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(tree, "notebooks")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, src := range notebooks {
		if err := os.WriteFile(filepath.Join(dir, name), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startLab starts JupyterLab as `kernel lab` does (127.0.0.1, a token), with the app exposed to
// the page's scripts (window.jupyterapp, as JupyterLab's own UI tests use), its log in logPath,
// and env added to its environment (and so to the kernel's), and stops it and every process it
// started (kernel, cell programs) when the test ends.
func startLab(t *testing.T, ctx context.Context, dir, logPath string, env ...string) *labServer {
	t.Helper()
	s, err := newLabServer(labOptions{Dir: dir, IP: "127.0.0.1", Port: 0, UI: "lab"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.cleanup)
	s.Cmd.Args = append(s.Cmd.Args, "--LabApp.expose_app_in_browser=True")
	marker := newRunMarker()
	s.Cmd.Env = append(append(s.Cmd.Env, env...), runMarkerEnv+"="+marker)
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	s.Cmd.Stdout, s.Cmd.Stderr = logFile, logFile
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-s.Cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.Cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
		killRun(s.Cmd.Process.Pid, marker)
		logFile.Close()
		if left := runProcesses(0, marker); len(left) > 0 {
			t.Errorf("processes of the lab still running: %v", describe(left))
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d/api/status", s.Port)
	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		req.Header.Set("Authorization", "token "+s.Token)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("JupyterLab did not answer %s within 60s (%v); its log is %s", url, err, logPath)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// open starts the browser and a page, watching the page's (and its workers') requests.
func (ls *labSession) open(chrome string) {
	t := ls.t
	b, err := startBrowser(ls.ctx, chrome, t.TempDir(), ls.event)
	if err != nil {
		t.Fatal(err)
	}
	ls.b = b
	var tgt struct {
		TargetID string `json:"targetId"`
	}
	if err := b.call(ls.ctx, "", "Target.createTarget", map[string]any{"url": "about:blank"}, &tgt); err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	if err := b.call(ls.ctx, "", "Target.attachToTarget", map[string]any{"targetId": tgt.TargetID, "flatten": true}, &att); err != nil {
		t.Fatal(err)
	}
	ls.page = att.SessionID
	for _, m := range []string{"Page.enable", "Network.enable", "Runtime.enable"} {
		if err := b.call(ls.ctx, ls.page, m, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Workers and frames the page starts are attached too, so their requests are seen.
	if err := b.call(ls.ctx, ls.page, "Target.setAutoAttach", map[string]any{"autoAttach": true, "waitForDebuggerOnStart": true, "flatten": true}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.call(ls.ctx, ls.page, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1280, "height": 1800, "deviceScaleFactor": 1, "mobile": false}, nil); err != nil {
		t.Fatal(err)
	}
}

// event records requests and exceptions; for an auto-attached worker or frame it turns on the
// network watch, then lets it run.
func (ls *labSession) event(m cdpMessage) {
	switch m.Method {
	case "Network.requestWillBeSent":
		var p struct {
			Request struct {
				URL string `json:"url"`
			} `json:"request"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			ls.mu.Lock()
			ls.urls = append(ls.urls, p.Request.URL)
			ls.mu.Unlock()
		}
	case "Network.webSocketCreated":
		var p struct {
			URL string `json:"url"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			ls.mu.Lock()
			ls.urls = append(ls.urls, p.URL)
			ls.mu.Unlock()
		}
	case "Runtime.exceptionThrown":
		var p struct {
			ExceptionDetails struct {
				Text      string `json:"text"`
				Exception struct {
					Description string `json:"description"`
				} `json:"exception"`
			} `json:"exceptionDetails"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			ls.mu.Lock()
			ls.errs = append(ls.errs, p.ExceptionDetails.Text+" "+firstLine(p.ExceptionDetails.Exception.Description))
			ls.mu.Unlock()
		}
	case "Target.attachedToTarget":
		var p struct {
			SessionID string `json:"sessionId"`
		}
		if json.Unmarshal(m.Params, &p) == nil {
			// Not on the reader goroutine: calls wait for replies that goroutine delivers.
			go func() {
				_ = ls.b.call(ls.ctx, p.SessionID, "Network.enable", nil, nil)
				_ = ls.b.call(ls.ctx, p.SessionID, "Runtime.runIfWaitingForDebugger", nil, nil)
			}()
		}
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func (ls *labSession) navigate(path string) {
	ls.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	if err := ls.b.call(ls.ctx, ls.page, "Page.navigate", map[string]any{"url": ls.base + path + sep + "token=" + ls.token}, nil); err != nil {
		ls.t.Fatal(err)
	}
	ls.wait("JupyterLab to start in the page", `window.jupyterapp !== undefined && window.jupyterapp.shell !== undefined`, 60*time.Second)
}

// withLabPanel wraps an expression so that it can call labPanel.
func withLabPanel(expr string) string {
	return "(() => {\n" + labPanelJS + "return (" + expr + ");\n})()"
}

// eval evaluates an expression with labPanel defined; a failure ends the test.
func (ls *labSession) eval(expr string, result any) {
	ls.t.Helper()
	if err := ls.b.eval(ls.ctx, ls.page, withLabPanel(expr), result); err != nil {
		ls.shot("failed")
		ls.t.Fatal(err)
	}
}

// wait waits for a condition; when it does not come in time the test ends with a screenshot.
func (ls *labSession) wait(what, cond string, limit time.Duration) {
	ls.t.Helper()
	if err := ls.b.waitFor(ls.ctx, ls.page, what, withLabPanel(cond), limit); err != nil {
		ls.shot("failed")
		ls.t.Fatal(err)
	}
}

// shot writes a numbered screenshot of the page to the screenshot directory.
func (ls *labSession) shot(name string) {
	ls.shotSeq++
	path := filepath.Join(ls.shots, fmt.Sprintf("%02d-%s.png", ls.shotSeq, name))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := ls.b.screenshot(ctx, ls.page, path); err != nil {
		ls.t.Logf("screenshot %s: %v", path, err)
		return
	}
	ls.t.Logf("screenshot %s", path)
}

func (ls *labSession) scrollToCharts() { ls.scrollToChartsAt(labNotebook) }

// scrollToChartsAt scrolls the notebook so that its first chart output is in view.
func (ls *labSession) scrollToChartsAt(path string) {
	ls.eval(fmt.Sprintf(`(() => {
		const p = labPanel(%q);
		const target = p.content.node.querySelector('.jp-OutputArea [data-nbui-chart], .jp-OutputArea img.nbui-static');
		if (target) { target.scrollIntoView({block: 'center'}); }
		return true;
	})()`, path), nil)
	time.Sleep(500 * time.Millisecond)
}

func (ls *labSession) model() *notebook { return ls.modelAt(labNotebook) }

// modelAt returns the model of the notebook at path as JupyterLab holds it, in the nbformat the
// checker reads.
func (ls *labSession) modelAt(path string) *notebook {
	var js string
	ls.eval(fmt.Sprintf(`JSON.stringify(labPanel(%q).model.toJSON())`, path), &js)
	var nb notebook
	if err := json.Unmarshal([]byte(js), &nb); err != nil {
		ls.t.Fatalf("the notebook model is not nbformat: %v", err)
	}
	return &nb
}

func (ls *labSession) checkCharts(when string, live bool) { ls.checkChartsAt(labNotebook, when, live) }

// checkChartsAt checks the charts of the notebook at path. live: every chart must be drawn by
// ECharts; else (an untrusted notebook, whose scripts JupyterLab does not run) each chart must
// have a static picture.
func (ls *labSession) checkChartsAt(path, when string, live bool) {
	t := ls.t
	t.Helper()
	var c labCharts
	ls.eval(fmt.Sprintf(labChartsJS, path), &c)
	t.Logf("%s: charts %+v, static pictures shown %d", when, c.Charts, c.Pictures)
	if len(c.Charts) == 0 {
		t.Errorf("%s: the outputs declare no chart (the welcome notebook shows one)", when)
		return
	}
	if c.Stale > 0 {
		t.Errorf("%s: %d chart divs are the ones from before the notebook was closed", when, c.Stale)
	}
	if !live {
		if c.Pictures != len(c.Charts) {
			t.Errorf("%s: %d charts, %d static pictures shown: JupyterLab runs no script here, so a chart without its picture is an empty box", when, len(c.Charts), c.Pictures)
		}
		return
	}
	if c.Pictures != 0 {
		t.Errorf("%s: %d static pictures still shown beside the live charts", when, c.Pictures)
	}
	for _, ch := range c.Charts {
		switch {
		case !ch.Present:
			t.Errorf("%s: chart %s is not in the page", when, ch.ID)
		case ch.State != "rendered":
			t.Errorf("%s: chart %s: nbui state %q, want rendered (%q)", when, ch.ID, ch.State, ch.Text)
		case !ch.Instance || ch.Series == 0:
			t.Errorf("%s: chart %s: no ECharts instance with series on it (instance %v, %d series)", when, ch.ID, ch.Instance, ch.Series)
		case ch.Painted < 1000:
			t.Errorf("%s: chart %s: only %d painted canvas pixels: ECharts did not draw", when, ch.ID, ch.Painted)
		}
	}
}
