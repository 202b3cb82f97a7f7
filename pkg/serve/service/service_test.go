package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/peftlab/peftlab/pkg/backend/backendtest"
	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/model"
	"github.com/peftlab/peftlab/pkg/peft"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/peft/full"
	"github.com/peftlab/peftlab/pkg/peft/lora"
	"github.com/peftlab/peftlab/pkg/peft/prompt"
	"github.com/peftlab/peftlab/pkg/serve"
	"github.com/peftlab/peftlab/pkg/serve/loadgen"
	"github.com/peftlab/peftlab/pkg/site"
	"github.com/peftlab/peftlab/pkg/tokenizer"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	pmodel "github.com/prometheus/common/model"
)

func loadBase(t testing.TB, name string) *bases.Base {
	t.Helper()
	b, err := bases.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixture is a service on a loopback test server with synthetic adapters loaded.
type fixture struct {
	e    *serve.Engine
	svc  *Service
	srv  *httptest.Server
	dirs map[string]string
}

var loadSpecs = []struct {
	name   string
	method peft.Method
}{
	{"spam-adalink", adalink.Config{Rank: 8}},
	{"topic-lora", lora.Config{Rank: 4, Alpha: 8}},
	{"review-prompt", prompt.Config{Tokens: 4}},
	{"spam-ft", full.Config{Preset: "head"}},
}

func newFixture(t *testing.T, baseName string, cfg Config) *fixture {
	t.Helper()
	base := loadBase(t, baseName)
	e, err := serve.New(base, serve.Options{Backend: backendtest.Backend(t), MaxBatch: 16, MaxNew: 3, MaxNewLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{e: e, dirs: map[string]string{}}
	if baseName == bases.Text {
		dir := t.TempDir()
		for i, s := range loadSpecs {
			d := filepath.Join(dir, s.name)
			if err := serve.SyntheticAdapter(d, base, s.name, s.method, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.Load(s.name, d); err != nil {
				t.Fatal(err)
			}
			f.dirs[s.name] = d
		}
	}
	cfg.Engine = e
	if f.svc, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.svc.Handler())
	t.Cleanup(func() {
		f.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = f.svc.Shutdown(ctx)
	})
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil && !strings.HasPrefix(path, "/metrics") {
		t.Fatalf("%s %s: answer is not a JSON object: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

// direct answers one request without package serve: the adapter loaded onto a fresh base
// by peft.LoadAdapter, model.Generate on a batch of one, decoded up to [EOS].
func direct(t *testing.T, baseName, dir, text string, maxNew int) string {
	t.Helper()
	base := loadBase(t, baseName)
	var hook *peft.Model
	if dir != "" {
		a, err := peft.LoadAdapter(dir, base.Scope, base.Config.Layout())
		if err != nil {
			t.Fatal(err)
		}
		if hook, err = peft.New(base.Config.Layout(), a); err != nil {
			t.Fatal(err)
		}
	}
	ids := append(append([]int32{tokenizer.BosID}, base.Tokenizer.Encode(text)...), tokenizer.SepID)
	gen, err := model.Generate(backendtest.Backend(t), base.Scope, base.Config, hookOf(hook), [][]int32{ids}, nil, maxNew)
	if err != nil {
		t.Fatal(err)
	}
	out := gen[0]
	if i := slices.Index(out, tokenizer.EosID); i >= 0 {
		out = out[:i]
	}
	return base.Tokenizer.Decode(out)
}

func hookOf(m *peft.Model) site.Hook {
	if m == nil {
		return nil
	}
	return m
}

// scrape reads /metrics with the Prometheus text parser.
func (f *fixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(pmodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	return fams
}

// counter returns the value of the metric family's series whose labels include want.
func counter(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	fam := fams[name]
	if fam == nil {
		return -1
	}
	total := 0.0
	for _, m := range fam.Metric {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			total += m.GetCounter().GetValue()
		}
	}
	return total
}

// TestLoadEveryAnswerCorrect runs the load generator against the service with four
// adapters of four methods and the base mixed, and checks that every request was answered
// with status 200 and exactly the answer of the same request run alone (model.Generate with
// the adapter attached by peft, no package serve), that requests were batched, and that the
// metrics count them all.
func TestLoadEveryAnswerCorrect(t *testing.T) {
	f := newFixture(t, bases.Text, Config{MaxDelay: 20 * time.Millisecond})
	texts := []string{"is this mail spam or ham? free money now", "what is the topic of this quote? time flies"}
	names := []string{"", "spam-adalink", "topic-lora", "review-prompt", "spam-ft"}
	var reqs []loadgen.Request
	for _, txt := range texts {
		for _, n := range names {
			reqs = append(reqs, loadgen.Request{Adapter: n, Text: txt, MaxNew: 3})
		}
	}
	const n = 40
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: f.srv.URL, Requests: reqs, N: n, Concurrency: 8, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", rep)
	if rep.Sent != n || rep.OK != n || rep.Failed != 0 || rep.Lost != 0 {
		t.Fatalf("sent %d, ok %d, failed %d, lost %d; want all %d ok", rep.Sent, rep.OK, rep.Failed, rep.Lost, n)
	}
	want := map[int]string{}
	for i, r := range reqs {
		want[i] = direct(t, bases.Text, f.dirs[r.Adapter], r.Text, r.MaxNew)
	}
	seen := map[int]bool{}
	for _, o := range rep.Outcomes {
		seen[o.Index] = true
		if w := want[o.Index%len(reqs)]; o.Answer != w {
			t.Errorf("request %d (adapter %q): answer %q, alone %q", o.Index, o.Request.Adapter, o.Answer, w)
		}
	}
	if len(seen) != n {
		t.Errorf("%d distinct requests reported, want %d", len(seen), n)
	}
	if rep.P50 <= 0 || rep.P99 < rep.P50 {
		t.Errorf("percentiles p50 %v p99 %v", rep.P50, rep.P99)
	}
	fams := f.scrape(t)
	if got := counter(fams, "peftlab_http_requests_total", map[string]string{"endpoint": "predict", "code": "200"}); got != n {
		t.Errorf("metrics count %v answered predictions, want %d", got, n)
	}
	h := fams["peftlab_batch_size"].Metric[0].GetHistogram()
	if h.GetSampleSum() != n {
		t.Errorf("batch sizes sum to %v, want %d items", h.GetSampleSum(), n)
	}
	if h.GetSampleCount() >= n {
		t.Errorf("%d batches for %d items: nothing was batched", h.GetSampleCount(), n)
	}
	mix := fams["peftlab_batch_adapters"].Metric[0].GetHistogram()
	if mix.GetSampleSum() <= float64(mix.GetSampleCount()) {
		t.Errorf("no batch mixed adapters (%v adapters over %d batches)", mix.GetSampleSum(), mix.GetSampleCount())
	}
	t.Logf("%d items in %d batches, %.1f adapters per batch on average", n, h.GetSampleCount(), mix.GetSampleSum()/float64(mix.GetSampleCount()))
}

func pngB64(t *testing.T, size, ch int) string {
	t.Helper()
	data, err := serve.EncodePNG(make([]float32, size*size*ch), size, ch)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(data)
}

// TestBadInput sends every kind of bad input the service must refuse and checks the status
// and message, then that the service still answers a good request.
func TestBadInput(t *testing.T) {
	text := newFixture(t, bases.Text, Config{MaxBodyBytes: 32 << 10, MaxItems: 4})
	vlm := newFixture(t, bases.VLMInstruct, Config{MaxImageBytes: 8 << 10})
	long := strings.Repeat("word ", 300)
	gif := base64.StdEncoding.EncodeToString([]byte("GIF89a\x01\x00\x01\x00"))
	damaged := base64.StdEncoding.EncodeToString(append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 40)...))
	bigPNG := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 16<<10))
	item := func(fields string) string { return "{" + fields + "}" }
	cases := []struct {
		name   string
		f      *fixture
		method string
		path   string
		body   string
		status int
		want   string
	}{
		{"malformed JSON", text, "POST", "/v1/predict", `{"text": "hi"`, 400, "malformed JSON"},
		{"not JSON", text, "POST", "/v1/predict", `text=hi`, 400, "malformed JSON"},
		{"empty body", text, "POST", "/v1/predict", ``, 400, "empty"},
		{"unknown field", text, "POST", "/v1/predict", `{"txt": "hi"}`, 400, "unknown field"},
		{"wrong type", text, "POST", "/v1/predict", `{"text": 5}`, 400, "malformed JSON"},
		{"trailing data", text, "POST", "/v1/predict", `{"text": "hi"} {}`, 400, "after the first value"},
		{"unknown adapter", text, "POST", "/v1/predict", `{"adapter": "nope", "text": "hi"}`, 404, "unknown adapter"},
		{"empty text", text, "POST", "/v1/predict", `{"text": "  "}`, 400, "text"},
		{"too many tokens", text, "POST", "/v1/predict", item(`"text": "` + long + `"`), 400, "too many tokens"},
		{"negative prompt cut", text, "POST", "/v1/predict", `{"text": "hi", "max_prompt_tokens": -2}`, 400, "negative"},
		{"too many new tokens", text, "POST", "/v1/predict", `{"text": "hi", "max_new_tokens": 50}`, 400, "max_new_tokens"},
		{"negative new tokens", text, "POST", "/v1/predict", `{"text": "hi", "max_new_tokens": -1}`, 400, "negative"},
		{"oversize body", text, "POST", "/v1/predict", `{"text": "` + strings.Repeat("a", 40<<10) + `"}`, 413, "larger than"},
		{"empty batch", text, "POST", "/v1/predict", `{"items": []}`, 400, "no items"},
		{"too many items", text, "POST", "/v1/predict", `[` + strings.Repeat(`{"text": "a"},`, 5) + `{"text": "b"}]`, 413, "at most 4"},
		{"bad item in batch", text, "POST", "/v1/predict", `[{"text": "a"}, {"adapter": "nope", "text": "b"}]`, 404, "item 1"},
		{"image on text base", text, "POST", "/v1/predict", item(`"text": "hi", "image_png_base64": "` + pngB64(t, 32, 3) + `"`), 400, "takes no images"},
		{"bad base64", vlm, "POST", "/v1/predict", `{"text": "hi", "image_png_base64": "%%%"}`, 400, "base64"},
		{"not a PNG", vlm, "POST", "/v1/predict", item(`"text": "hi", "image_png_base64": "` + gif + `"`), 400, "not a PNG"},
		{"damaged PNG", vlm, "POST", "/v1/predict", item(`"text": "hi", "image_png_base64": "` + damaged + `"`), 400, "PNG"},
		{"wrong image size", vlm, "POST", "/v1/predict", item(`"text": "hi", "image_png_base64": "` + pngB64(t, 16, 3) + `"`), 400, "16x16"},
		{"oversize image", vlm, "POST", "/v1/predict", item(`"text": "hi", "image_png_base64": "` + bigPNG + `"`), 413, "at most"},
		{"wrong method", text, "GET", "/v1/predict", ``, 405, ""},
		{"unknown path", text, "GET", "/v2/everything", ``, 404, "no endpoint"},
		{"load: no dir or run", text, "POST", "/v1/adapters", `{}`, 400, "exactly one"},
		{"load: missing dir", text, "POST", "/v1/adapters", `{"dir": "/nonexistent/adapter"}`, 404, "no such file"},
		{"load: no store", text, "POST", "/v1/adapters", `{"run": "abc"}`, 400, "no run store"},
		{"unload unknown", text, "DELETE", "/v1/adapters/nope", ``, 404, "unknown adapter"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, c.f.srv.URL+c.path, strings.NewReader(c.body))
		resp, err := c.f.srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, resp.StatusCode, c.status, raw)
			continue
		}
		if c.want == "" {
			continue
		}
		var body struct{ Error string }
		if err := json.Unmarshal(raw, &body); err != nil || !strings.Contains(body.Error, c.want) {
			t.Errorf("%s: body %s, want a JSON error saying %q", c.name, raw, c.want)
		}
	}
	for _, f := range []*fixture{text, vlm} {
		body := `{"text": "is this mail spam?"}`
		if f == vlm {
			body = item(`"text": "what digit is this?", "image_png_base64": "` + pngB64(t, 32, 3) + `"`)
		}
		if status, out := f.do(t, "POST", "/v1/predict", body); status != 200 || out["answer"] == nil {
			t.Errorf("after the bad inputs, a good request got %d %v", status, out)
		}
	}
	// The same long text, cut to fit as the lab's sources cut prompts.
	if status, out := text.do(t, "POST", "/v1/predict", item(`"text": "`+long+`", "max_prompt_tokens": 40`)); status != 200 {
		t.Errorf("a long text with max_prompt_tokens: %d %v", status, out)
	}
	if status, _ := text.do(t, "GET", "/healthz", ""); status != 200 {
		t.Errorf("healthz after the bad inputs: %d", status)
	}
}

// makeRun writes one run of the lab's run store: DIR/<id>/{summary.json, done.json,
// adapters/<adapter>/...} (done.json only when complete).
func makeRun(t *testing.T, store, id, name, baseName string, base *bases.Base, done bool, adapters ...string) {
	t.Helper()
	run := filepath.Join(store, id)
	for i, a := range adapters {
		if err := serve.SyntheticAdapter(filepath.Join(run, "adapters", a), base, a, adalink.Config{Rank: 4}, uint64(7+i)); err != nil {
			t.Fatal(err)
		}
	}
	sum, _ := json.Marshal(map[string]any{"id": id, "name": name, "base": baseName, "task": "spam", "method": "adalink"})
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "summary.json"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	if done {
		if err := os.WriteFile(filepath.Join(run, "done.json"), []byte(`{}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdaptersEndpoint loads adapters from a directory and from a hand-made run store,
// refuses the wrong ones with their reasons, unloads, and checks that predictions follow.
func TestAdaptersEndpoint(t *testing.T) {
	store := t.TempDir()
	text, raw := loadBase(t, bases.Text), loadBase(t, bases.VLMRaw)
	makeRun(t, store, "r1", "AdaLink r=4", bases.Text, text, true, "spam")
	makeRun(t, store, "r2", "two adapters", bases.Text, text, true, "a", "b")
	makeRun(t, store, "r3", "still training", bases.Text, text, false, "spam")
	makeRun(t, store, "r4", "other base", bases.VLMRaw, raw, true, "spam")
	f := newFixture(t, bases.Text, Config{Store: store})

	status, list := f.do(t, "GET", "/v1/adapters", "")
	if status != 200 || list["base"] != bases.Text || len(list["adapters"].([]any)) != len(loadSpecs) {
		t.Fatalf("GET /v1/adapters: %d %v", status, list)
	}
	first := list["adapters"].([]any)[0].(map[string]any)
	for _, k := range []string{"name", "method", "rank", "base", "trainable_params"} {
		if _, ok := first[k]; !ok {
			t.Errorf("adapter listing lacks %q: %v", k, first)
		}
	}

	post := func(body string, wantStatus int, want string) map[string]any {
		t.Helper()
		status, out := f.do(t, "POST", "/v1/adapters", body)
		if status != wantStatus {
			t.Fatalf("POST /v1/adapters %s: %d %v, want %d", body, status, out, wantStatus)
		}
		if want != "" && !strings.Contains(fmt.Sprint(out), want) {
			t.Errorf("POST /v1/adapters %s: %v, want it to say %q", body, out, want)
		}
		return out
	}
	info := post(`{"run": "r1"}`, 201, "AdaLink r=4")
	if info["method"] != "ADALINK" || info["trainable_params"].(float64) != 2*64*4 {
		t.Errorf("loaded run r1: %v", info)
	}
	post(`{"run": "r1"}`, 409, "already in use")
	post(`{"run": "r2"}`, 400, "pick one")
	post(`{"run": "r2", "adapter": "b"}`, 201, "r2/b")
	post(`{"run": "r2", "adapter": "zz"}`, 404, "no adapter")
	post(`{"run": "r3"}`, 400, "not complete")
	post(`{"run": "r4"}`, 422, "vlm-raw")
	post(`{"run": "nope"}`, 404, "not in the store")
	post(`{"run": "../r1"}`, 400, "not a run")
	// A directory of another base: peft.LoadAdapter's refusal, passed on.
	post(`{"dir": "`+filepath.Join(store, "r4", "adapters", "spam")+`"}`, 422, "base")
	post(`{"dir": "`+filepath.Join(store, "r2", "adapters", "a")+`", "name": "by-dir"}`, 201, "by-dir")

	status, out := f.do(t, "POST", "/v1/predict", `{"adapter": "AdaLink r=4", "text": "is this mail spam?"}`)
	if status != 200 || out["adapter"] != "AdaLink r=4" || out["time_ms"].(float64) <= 0 {
		t.Fatalf("predict with a store adapter: %d %v", status, out)
	}
	if got, want := out["answer"], direct(t, bases.Text, filepath.Join(store, "r1", "adapters", "spam"), "is this mail spam?", 3); got != want {
		t.Errorf("store adapter answered %q, alone %q", got, want)
	}
	if status, out := f.do(t, "DELETE", "/v1/adapters/AdaLink%20r=4", ""); status != 200 || out["unloaded"] != "AdaLink r=4" {
		t.Errorf("DELETE: %d %v", status, out)
	}
	if status, _ := f.do(t, "DELETE", "/v1/adapters/r2/b", ""); status != 200 {
		t.Errorf("DELETE of a name with a slash: %d", status)
	}
	if status, out := f.do(t, "POST", "/v1/predict", `{"adapter": "AdaLink r=4", "text": "hi"}`); status != 404 {
		t.Errorf("predict with an unloaded adapter: %d %v", status, out)
	}
	if status, _ := f.do(t, "DELETE", "/v1/adapters/AdaLink%20r=4", ""); status != 404 {
		t.Errorf("second DELETE: %d", status)
	}
}

// TestClientDisconnects checks that a client leaving while its request waits for a batch,
// or in the middle of sending its body, costs nothing but its own request.
func TestClientDisconnects(t *testing.T) {
	f := newFixture(t, bases.Text, Config{MaxDelay: time.Second, MaxBatch: 16})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/v1/predict", strings.NewReader(`{"text": "is this spam?"}`))
	gone := make(chan error, 1)
	go func() { _, err := f.srv.Client().Do(req); gone <- err }()
	f.waitInFlight(t, 1) // the request waits for its batch to fill
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the canceled request got an answer")
	}
	// Half a body, then the connection closes.
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"text\": \"is th")
	conn.Close()

	deadline := time.Now().Add(10 * time.Second)
	for {
		fams := f.scrape(t)
		dropped := counter(fams, "peftlab_dropped_items_total", nil)
		left := counter(fams, "peftlab_http_requests_total", map[string]string{"code": "499"})
		// The half-sent body ends as 499 or, when the read error comes before the
		// connection's context is canceled, as 400: either way it is counted and done.
		all := counter(fams, "peftlab_http_requests_total", map[string]string{"endpoint": "predict"})
		if dropped >= 1 && left >= 1 && all >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after two clients left: %v items dropped, %v requests counted as 499, %v predictions in all", dropped, left, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, out := f.do(t, "POST", "/v1/predict", `{"text": "is this spam?"}`); status != 200 {
		t.Errorf("after the disconnects: %d %v", status, out)
	}
}

// TestShutdownDrains shuts the server down while requests wait for their batch: every one
// of them must still be answered.
func TestShutdownDrains(t *testing.T) {
	base := loadBase(t, bases.Text)
	e, err := serve.New(base, serve.Options{Backend: backendtest.Backend(t), MaxNew: 2})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Config{Engine: e, MaxDelay: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: svc.Handler()}
	go srv.Serve(ln)
	url := "http://" + ln.Addr().String()
	const n = 6
	statuses := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Post(url+"/v1/predict", "application/json", strings.NewReader(`{"text": "is this spam?"}`))
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	waitGauge(t, url, "peftlab_http_requests_in_flight", n) // the requests now wait in the batcher
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for range n {
		if s := <-statuses; s != 200 {
			t.Errorf("a request in flight during shutdown got status %d", s)
		}
	}
	if _, err := http.Post(url+"/v1/predict", "application/json", strings.NewReader(`{"text": "x"}`)); err == nil {
		t.Error("the server answered after shutdown")
	}
}

// waitInFlight waits until the service handles at least n requests at once.
func (f *fixture) waitInFlight(t *testing.T, n int) {
	t.Helper()
	waitGauge(t, f.srv.URL, "peftlab_http_requests_in_flight", n)
}

// waitGauge polls url's /metrics until the gauge reaches at least n (the scrape itself is
// not counted), failing after a minute.
func waitGauge(t *testing.T, url, name string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(url + "/metrics")
		if err == nil {
			p := expfmt.NewTextParser(pmodel.UTF8Validation)
			fams, err := p.TextToMetricFamilies(resp.Body)
			resp.Body.Close()
			if err == nil && fams[name] != nil && fams[name].Metric[0].GetGauge().GetValue() >= float64(n) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %d", name, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
