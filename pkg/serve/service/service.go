// Package service is peftlab's HTTP inference service: one frozen base, many adapters,
// requests for any of them gathered into mixed batches (package serve).
//
//	GET    /v1/adapters          the loaded adapters (name, method, rank, base, trainable parameters)
//	POST   /v1/adapters          load one: {"dir": "..."} or {"run": "<id>"} from the run store, optional "name"
//	DELETE /v1/adapters/{name}   unload one
//	POST   /v1/predict           {"adapter": "...", "text": "...", "image_png_base64": "...", "max_new_tokens": n,
//	                             "max_prompt_tokens": m}, or {"items": [ ... ]}, or a JSON array of such items
//	GET    /healthz              200 while serving, 503 while shutting down
//	GET    /metrics              Prometheus text format: requests, items, batch sizes, latencies
//
// Every bad input gets a 4xx status and a JSON body {"error": "..."} that says what is
// wrong: malformed JSON or unknown fields (400), an unknown adapter (404), a body or image
// over the limits (413), an image that is not a PNG or not the base's size (400), empty text
// (400), more tokens than the base has positions (400). A client that disconnects is
// dropped from its batch; Shutdown finishes the requests in flight.
package service

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/peftlab/peftlab/pkg/serve"
)

// Config configures a Service; zero fields take the defaults.
type Config struct {
	Engine *serve.Engine
	// MaxBatch and MaxDelay are the dynamic batching limits (see serve.Batcher): defaults
	// the engine's MaxBatch and 5 ms.
	MaxBatch int
	MaxDelay time.Duration
	// MaxBodyBytes caps a request body (default 4 MiB); MaxImageBytes one decoded PNG file
	// (default 256 KiB); MaxItems the items of one predict request (default 64).
	MaxBodyBytes  int64
	MaxImageBytes int
	MaxItems      int
	// Store is the lab's run store that POST /v1/adapters {"run": id} loads from ("" = none).
	Store string
	// Log receives one line per event worth knowing (loads, failures); nil discards.
	Log *log.Logger
}

// Service is the HTTP service. Create it with New, serve Handler, and call Shutdown.
type Service struct {
	cfg     Config
	e       *serve.Engine
	batcher *serve.Batcher
	metrics *metrics
	mux     *http.ServeMux

	closing  atomic.Bool
	inflight sync.WaitGroup
}

// New returns a service for cfg.Engine and starts its batcher.
func New(cfg Config) (*Service, error) {
	if cfg.Engine == nil {
		return nil, errors.New("service: no engine given")
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = cfg.Engine.Options().MaxBatch
	}
	if cfg.MaxDelay == 0 {
		cfg.MaxDelay = 5 * time.Millisecond
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 4 << 20
	}
	if cfg.MaxImageBytes <= 0 {
		cfg.MaxImageBytes = 256 << 10
	}
	if cfg.MaxItems <= 0 {
		cfg.MaxItems = 64
	}
	if cfg.Log == nil {
		cfg.Log = log.New(io.Discard, "", 0)
	}
	s := &Service{cfg: cfg, e: cfg.Engine, metrics: newMetrics(cfg.Engine), mux: http.NewServeMux()}
	s.batcher = serve.NewBatcher(cfg.Engine, cfg.MaxBatch, cfg.MaxDelay)
	s.batcher.OnBatch = s.metrics.batch
	s.route("GET /v1/adapters", "adapters", s.listAdapters)
	s.route("POST /v1/adapters", "load", s.loadAdapter)
	s.route("DELETE /v1/adapters/{name...}", "unload", s.unloadAdapter)
	s.route("POST /v1/predict", "predict", s.predict)
	s.route("GET /healthz", "healthz", s.healthz)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allow := allowed(r.URL.Path); allow != "" {
			s.metrics.request("other", http.StatusMethodNotAllowed, 0)
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes %s, not %s", r.URL.Path, allow, r.Method))
			return
		}
		s.metrics.request("other", http.StatusNotFound, 0)
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s (see GET /v1/adapters, POST /v1/predict, /healthz, /metrics)", r.Method, r.URL.Path))
	})
	return s, nil
}

// Handler serves the endpoints.
func (s *Service) Handler() http.Handler { return s.mux }

// Shutdown marks the service as closing (healthz answers 503, new predictions 503), waits
// for the requests in flight (their batches run), then stops the batcher. Call it after
// http.Server.Shutdown, which stops new connections; ctx bounds the wait.
func (s *Service) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	done := make(chan struct{})
	go func() { s.inflight.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.batcher.Close()
	return err
}

// statusWriter remembers the status written, for the metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// route registers a handler that is counted, timed, and never lets a panic through.
func (s *Service) route(pattern, name string, h func(http.ResponseWriter, *http.Request)) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		s.metrics.inflight.Inc()
		defer func() {
			s.metrics.inflight.Dec()
			s.inflight.Done()
		}()
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.cfg.Log.Printf("%s %s: internal error: %v", r.Method, r.URL.Path, p)
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, fmt.Sprintf("internal error: %v", p))
				}
			}
			status := sw.status
			if r.Context().Err() != nil && status == 0 {
				status = statusClientClosed
			}
			s.metrics.request(name, status, time.Since(start))
		}()
		h(sw, r)
	})
}

// statusClientClosed is what the metrics count for a client that left before its answer
// (nginx's convention; it is never sent).
const statusClientClosed = 499

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// decodeBody decodes the JSON request body into v, refusing unknown fields, trailing data
// and bodies over the limit; it returns the status and message for a bad body.
func (s *Service) decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return http.StatusRequestEntityTooLarge, fmt.Errorf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes)
		}
		return http.StatusBadRequest, fmt.Errorf("reading the request body: %w", err)
	}
	return decodeJSON(data, v)
}

func decodeJSON(data []byte, v any) (int, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return http.StatusBadRequest, errors.New("the request body is empty: send a JSON object")
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return http.StatusBadRequest, fmt.Errorf("malformed JSON: %w", err)
	}
	if dec.More() {
		return http.StatusBadRequest, errors.New("malformed JSON: data after the first value")
	}
	return 0, nil
}

// adaptersBody is GET /v1/adapters' answer.
type adaptersBody struct {
	Base     string `json:"base"`
	BaseHash string `json:"base_hash"`
	// ImageSize and Channels are the images the base takes (0 for a text-only base);
	// MaxLen its text positions.
	ImageSize int          `json:"image_size,omitempty"`
	Channels  int          `json:"channels,omitempty"`
	MaxLen    int          `json:"max_len"`
	Adapters  []serve.Info `json:"adapters"`
}

func (s *Service) listAdapters(w http.ResponseWriter, _ *http.Request) {
	c := s.e.Config()
	writeJSON(w, http.StatusOK, adaptersBody{Base: s.e.BaseName(), BaseHash: s.e.BaseHash(),
		ImageSize: c.ImageSize, Channels: c.Channels, MaxLen: c.MaxLen, Adapters: s.e.Adapters()})
}

// loadRequest is POST /v1/adapters' body.
type loadRequest struct {
	// Name to serve the adapter under; default the directory's name, or the run's name.
	Name string `json:"name,omitempty"`
	// Dir is an adapter directory (adapter_config.json, adapter_model.safetensors).
	Dir string `json:"dir,omitempty"`
	// Run is the id of a run of the store (-store); Adapter picks one of its adapters when
	// it has several.
	Run     string `json:"run,omitempty"`
	Adapter string `json:"adapter,omitempty"`
	// Merge serves a LoRA adapter merged into its own copy of the base.
	Merge bool `json:"merge,omitempty"`
}

func (s *Service) loadAdapter(w http.ResponseWriter, r *http.Request) {
	var req loadRequest
	if status, err := s.decodeBody(w, r, &req); err != nil {
		writeError(w, status, err.Error())
		return
	}
	var f serve.Found
	switch {
	case (req.Dir == "") == (req.Run == ""):
		writeError(w, http.StatusBadRequest, `give exactly one of "dir" (an adapter directory) and "run" (a run id of the store)`)
		return
	case req.Dir != "":
		if req.Adapter != "" {
			writeError(w, http.StatusBadRequest, `"adapter" picks an adapter of a run: use it with "run"`)
			return
		}
		found, err := serve.ScanDir(req.Dir)
		if err != nil || len(found) == 0 {
			if err == nil {
				err = fmt.Errorf("%s holds no adapter (no %s in it or below)", req.Dir, "adapter_config.json")
			}
			writeError(w, http.StatusNotFound, err.Error())
			return
		}
		if len(found) > 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("%s holds %d adapters: name one of their directories (%s, ...)", req.Dir, len(found), found[0].Dir))
			return
		}
		f = found[0]
	default:
		if s.cfg.Store == "" {
			writeError(w, http.StatusBadRequest, `this server has no run store: start it with -store DIR, or load by "dir"`)
			return
		}
		found, err := serve.StoreRun(s.cfg.Store, req.Run)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, fs.ErrNotExist) {
				status = http.StatusNotFound
			}
			writeError(w, status, err.Error())
			return
		}
		var pick []serve.Found
		for _, x := range found {
			if req.Adapter == "" || x.Dir[strings.LastIndexAny(x.Dir, `/\`)+1:] == req.Adapter {
				pick = append(pick, x)
			}
		}
		switch {
		case len(pick) == 0 && req.Adapter != "":
			writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no adapter %q", req.Run, req.Adapter))
			return
		case len(pick) == 0:
			writeError(w, http.StatusNotFound, fmt.Sprintf("run %s has no adapters", req.Run))
			return
		case len(pick) > 1:
			writeError(w, http.StatusBadRequest, fmt.Sprintf(`run %s has %d adapters: pick one with "adapter"`, req.Run, len(pick)))
			return
		}
		f = pick[0]
		if f.Base != "" && f.Base != s.e.BaseName() {
			writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("run %s was trained on base %q; this server serves %q", req.Run, f.Base, s.e.BaseName()))
			return
		}
	}
	if req.Name != "" {
		f.Name = req.Name
	}
	if _, err := os.Stat(f.Dir); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	info, err := s.e.LoadWith(f.Name, f.Dir, serve.LoadOptions{Merge: req.Merge})
	if err != nil {
		status := http.StatusUnprocessableEntity // the files are there but do not serve on this base
		if errors.Is(err, serve.ErrAdapterExists) {
			status = http.StatusConflict
		} else if serve.CheckName(f.Name) != nil {
			status = http.StatusBadRequest
		}
		writeError(w, status, err.Error())
		return
	}
	s.cfg.Log.Printf("loaded adapter %q (%s) from %s", info.Name, info.Config, info.Source)
	writeJSON(w, http.StatusCreated, info)
}

func (s *Service) unloadAdapter(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.e.Unload(name); err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	s.cfg.Log.Printf("unloaded adapter %q", name)
	writeJSON(w, http.StatusOK, map[string]string{"unloaded": name})
}

func (s *Service) healthz(w http.ResponseWriter, _ *http.Request) {
	if s.closing.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "base": s.e.BaseName(), "adapters": len(s.e.Adapters())})
}

// predictItem is one item of POST /v1/predict.
type predictItem struct {
	Adapter        string `json:"adapter"`
	Text           string `json:"text"`
	ImagePNGBase64 string `json:"image_png_base64,omitempty"`
	MaxNewTokens   int    `json:"max_new_tokens,omitempty"`
	// MaxPromptTokens, when > 0, cuts the text to its first that many tokens, as the lab's
	// task sources cut training and scoring prompts; without it a text too long for the
	// base is refused.
	MaxPromptTokens int `json:"max_prompt_tokens,omitempty"`
}

// predictBatch is the batch form of POST /v1/predict.
type predictBatch struct {
	Items []predictItem `json:"items"`
}

// Prediction is the answer to one item.
type Prediction struct {
	Adapter string `json:"adapter"`
	Answer  string `json:"answer"`
	// Tokens is the number of tokens generated.
	Tokens int `json:"tokens"`
	// TimeMS is the time from the request's arrival to this answer, queueing included.
	TimeMS float64 `json:"time_ms"`
}

// BatchPrediction is the answer to a batch request.
type BatchPrediction struct {
	Results []Prediction `json:"results"`
	TimeMS  float64      `json:"time_ms"`
}

func (s *Service) predict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.closing.Load() {
		writeError(w, http.StatusServiceUnavailable, serve.ErrClosed.Error())
		return
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		if r.Context().Err() != nil {
			return // the client left mid-body
		}
		writeError(w, http.StatusBadRequest, "reading the request body: "+err.Error())
		return
	}
	var items []predictItem
	batch := false
	trimmed := strings.TrimSpace(string(data))
	switch {
	case strings.HasPrefix(trimmed, "["):
		batch = true
		if status, err := decodeJSON(data, &items); err != nil {
			writeError(w, status, err.Error())
			return
		}
	case hasKey(data, "items"):
		batch = true
		var b predictBatch
		if status, err := decodeJSON(data, &b); err != nil {
			writeError(w, status, err.Error())
			return
		}
		items = b.Items
	default:
		var it predictItem
		if status, err := decodeJSON(data, &it); err != nil {
			writeError(w, status, err.Error())
			return
		}
		items = []predictItem{it}
	}
	if len(items) == 0 {
		writeError(w, http.StatusBadRequest, "the batch holds no items")
		return
	}
	if len(items) > s.cfg.MaxItems {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the batch holds %d items, at most %d are allowed per request", len(items), s.cfg.MaxItems))
		return
	}
	engineItems := make([]serve.Item, len(items))
	for i, it := range items {
		ei, status, err := s.item(it)
		if err != nil {
			msg := err.Error()
			if batch {
				msg = fmt.Sprintf("item %d: %s", i, msg)
			}
			writeError(w, status, msg)
			return
		}
		engineItems[i] = ei
	}
	s.metrics.items(engineItems)

	out := make([]Prediction, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i := range engineItems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.batcher.Submit(r.Context(), engineItems[i])
			if err == nil {
				err = res.Err
			}
			errs[i] = err
			out[i] = Prediction{Adapter: res.Adapter, Answer: res.Text, Tokens: len(res.Tokens), TimeMS: ms(time.Since(start))}
		}()
	}
	wg.Wait()
	if r.Context().Err() != nil {
		return // the client left; its items were dropped from their batches
	}
	for i, err := range errs {
		if err == nil {
			continue
		}
		status := http.StatusInternalServerError
		var ie *serve.InputError
		switch {
		case errors.Is(err, serve.ErrUnknownAdapter):
			status = http.StatusNotFound // unloaded while the request waited
		case errors.As(err, &ie):
			status = http.StatusBadRequest
		case errors.Is(err, serve.ErrClosed), errors.Is(err, serve.ErrOverloaded):
			status = http.StatusServiceUnavailable
		}
		msg := err.Error()
		if batch {
			msg = fmt.Sprintf("item %d: %s", i, msg)
		}
		if status == http.StatusInternalServerError {
			s.cfg.Log.Printf("predict: %s", msg)
		}
		writeError(w, status, msg)
		return
	}
	if !batch {
		writeJSON(w, http.StatusOK, out[0])
		return
	}
	writeJSON(w, http.StatusOK, BatchPrediction{Results: out, TimeMS: ms(time.Since(start))})
}

// item checks one predict item and turns it into the engine's form.
func (s *Service) item(it predictItem) (serve.Item, int, error) {
	if strings.TrimSpace(it.Text) == "" {
		return serve.Item{}, http.StatusBadRequest, errors.New(`"text" is empty: send the question or prompt as text`)
	}
	if it.MaxNewTokens < 0 {
		return serve.Item{}, http.StatusBadRequest, fmt.Errorf("max_new_tokens %d is negative", it.MaxNewTokens)
	}
	if it.MaxPromptTokens < 0 {
		return serve.Item{}, http.StatusBadRequest, fmt.Errorf("max_prompt_tokens %d is negative", it.MaxPromptTokens)
	}
	ei := serve.Item{Adapter: it.Adapter, MaxNew: it.MaxNewTokens}
	c := s.e.Config()
	if it.ImagePNGBase64 != "" {
		if !c.HasImage() {
			return serve.Item{}, http.StatusBadRequest, fmt.Errorf("base %s takes no images: leave out image_png_base64", s.e.BaseName())
		}
		if n := base64.StdEncoding.DecodedLen(len(it.ImagePNGBase64)); n > s.cfg.MaxImageBytes {
			return serve.Item{}, http.StatusRequestEntityTooLarge, fmt.Errorf("the image is about %d bytes, at most %d are allowed (the base takes %dx%d PNG images)",
				n, s.cfg.MaxImageBytes, c.ImageSize, c.ImageSize)
		}
		raw, err := base64.StdEncoding.DecodeString(it.ImagePNGBase64)
		if err != nil {
			return serve.Item{}, http.StatusBadRequest, fmt.Errorf("image_png_base64 is not valid base64: %w", err)
		}
		px, err := serve.DecodePNG(raw, c.ImageSize, c.Channels)
		if err != nil {
			return serve.Item{}, http.StatusBadRequest, err
		}
		ei.Image = px
	} else if c.HasImage() && !c.HasText() {
		return serve.Item{}, http.StatusBadRequest, errors.New("this base needs an image: send image_png_base64")
	}
	ei.Tokens = s.e.PromptCut(it.Text, it.MaxPromptTokens)
	if err := s.e.Check(ei); err != nil {
		if errors.Is(err, serve.ErrUnknownAdapter) {
			return serve.Item{}, http.StatusNotFound, err
		}
		return serve.Item{}, http.StatusBadRequest, err
	}
	return ei, 0, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// hasKey reports whether data is a JSON object with the key.
func hasKey(data []byte, key string) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(data, &m) != nil {
		return false
	}
	_, ok := m[key]
	return ok
}

// allowed lists the methods an endpoint path takes ("" for an unknown path).
func allowed(path string) string {
	switch {
	case path == "/v1/adapters":
		return "GET, POST"
	case strings.HasPrefix(path, "/v1/adapters/"):
		return "DELETE"
	case path == "/v1/predict":
		return "POST"
	case path == "/healthz", path == "/metrics":
		return "GET"
	}
	return ""
}
