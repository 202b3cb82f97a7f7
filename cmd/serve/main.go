// Command serve serves a peftlab base with many adapters over HTTP, mixing tasks in one
// batch (see package service for the endpoints), and drives such a server with a load.
//
//	go run ./cmd/serve [-addr 127.0.0.1:8080] [-base text] [-adapters DIR] [-store DIR]
//	                   [-max-batch 32] [-max-delay 5ms] [-max-new 16]
//	go run ./cmd/serve -load [-url http://127.0.0.1:8080] [-n 200] [-c 8] [-k 4] [-check] [-json FILE]
//	go run ./cmd/serve -measure [-fast] [-json FILE]
//
// -base is a shipped base (text, vlm-raw, vlm-instruct) or a checkpoint directory.
// -adapters loads every adapter directory found in DIR (a notebook's work directory, say),
// named by its path below DIR; -store loads the complete runs of the lab's run store. Adapters
// of another base are skipped with a line saying why. The server binds 127.0.0.1 unless -addr
// says otherwise, and on SIGTERM or Ctrl-C stops taking requests, answers those in flight,
// and exits.
//
// -load sends -n prediction requests, -c at a time, cycling over -k of the server's adapters
// (and the base alone, when -k exceeds them), and prints throughput and latency percentiles.
// Without -url it first starts a server here on a free loopback port with the -base,
// -adapters and -store flags, making -k synthetic AdaLink adapters when none are given;
// -check then compares every answer with the same request run alone on the engine. It only
// ever sends to loopback addresses.
//
// -measure runs the serving measurement (serve.Measure) on -base: batch time against the
// number of distinct tasks in the batch for AdaLink, LoRA (mixed and one model per task,
// unmerged and merged), full fine-tuning and the bare base, and the memory of holding 1, 10
// and 100 tasks, then prints the tables and the targets. -fast makes it a smoke run (batch
// 8, 3 repeats).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/peftlab/peftlab/pkg/bases"
	"github.com/peftlab/peftlab/pkg/nbui"
	"github.com/peftlab/peftlab/pkg/peft/adalink"
	"github.com/peftlab/peftlab/pkg/serve"
	"github.com/peftlab/peftlab/pkg/serve/loadgen"
	"github.com/peftlab/peftlab/pkg/serve/service"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

// flags are the command's settings.
type flags struct {
	addr, base, adapters, store string
	maxBatch, maxNew            int
	maxDelay                    time.Duration

	load, check   bool
	measure, fast bool
	url, jsonOut  string
	n, conc, k    int
	timeout       time.Duration
	synthRank     int
}

func parse(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free one)")
	fs.StringVar(&f.base, "base", bases.Text, "base to serve: "+strings.Join(bases.Names(), ", ")+", or a checkpoint directory")
	fs.StringVar(&f.adapters, "adapters", "", "directory of adapter directories to load at start")
	fs.StringVar(&f.store, "store", "", "the lab's run store: load its complete runs at start, and by run id later")
	fs.IntVar(&f.maxBatch, "max-batch", 32, "dynamic batching: most items per batch")
	fs.DurationVar(&f.maxDelay, "max-delay", 5*time.Millisecond, "dynamic batching: longest wait for a batch to fill")
	fs.IntVar(&f.maxNew, "max-new", 16, "tokens generated for a request that does not say (max_new_tokens)")
	fs.BoolVar(&f.load, "load", false, "send a load to a server instead of serving")
	fs.StringVar(&f.url, "url", "", "with -load: the server's URL (loopback only); empty starts a server here")
	fs.IntVar(&f.n, "n", 200, "with -load: number of requests")
	fs.IntVar(&f.conc, "c", 8, "with -load: requests in flight at once")
	fs.IntVar(&f.k, "k", 4, "with -load: number of distinct adapters to mix")
	fs.BoolVar(&f.check, "check", false, "with -load and no -url: check every answer against the request run alone")
	fs.StringVar(&f.jsonOut, "json", "", "with -load: write the report (and every outcome) to this JSON file")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "with -load: timeout of each request")
	fs.IntVar(&f.synthRank, "synthetic-rank", 8, "with -load and no adapters: rank of the synthetic AdaLink adapters")
	fs.BoolVar(&f.measure, "measure", false, "run the serving measurement instead of serving")
	fs.BoolVar(&f.fast, "fast", false, "with -measure: a quick, smaller run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q (flags only; see -help)", fs.Args())
	}
	if f.adapters != "" && f.store != "" {
		return nil, errors.New("give -adapters or -store, not both")
	}
	if f.load && f.url != "" && f.check {
		return nil, errors.New("-check needs the engine in this process: leave out -url")
	}
	if f.n <= 0 || f.conc <= 0 || f.k <= 0 {
		return nil, errors.New("-n, -c and -k must be positive")
	}
	return f, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parse(args, stderr)
	if err != nil {
		return err
	}
	logger := log.New(stderr, "serve: ", log.LstdFlags)
	if f.measure {
		return measure(f, stdout, logger)
	}
	if f.load && f.url != "" {
		return drive(ctx, f, f.url, nil, stdout)
	}
	if f.load {
		f.addr = "127.0.0.1:0"
	}
	e, err := engine(f, logger)
	if err != nil {
		return err
	}
	if f.load && len(e.Adapters()) == 0 {
		dir, err := os.MkdirTemp("", "peftlab-serve-load-*")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		b, err := loadBase(f.base)
		if err != nil {
			return err
		}
		for i := range f.k {
			name := fmt.Sprintf("synthetic-%d", i)
			d := filepath.Join(dir, name)
			if err := serve.SyntheticAdapter(d, b, name, adalink.Config{Rank: f.synthRank}, uint64(i+1)); err != nil {
				return err
			}
			if _, err := e.Load(name, d); err != nil {
				return err
			}
		}
		logger.Printf("no adapters given: made %d synthetic AdaLink r=%d adapters", f.k, f.synthRank)
	}
	svc, err := service.New(service.Config{Engine: e, MaxBatch: f.maxBatch, MaxDelay: f.maxDelay, Store: f.store, Log: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	if host, _, err := net.SplitHostPort(ln.Addr().String()); err == nil {
		if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
			logger.Printf("note: listening on %s, reachable from other machines (the default is 127.0.0.1)", ln.Addr())
		}
	}
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: logger}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	url := "http://" + ln.Addr().String()
	logger.Printf("serving base %s with %d adapters on %s (max batch %d, max delay %s)",
		e.BaseName(), len(e.Adapters()), url, f.maxBatch, f.maxDelay)

	var loadErr error
	if f.load {
		loadErr = drive(ctx, f, url, e, stdout)
	} else {
		select {
		case <-ctx.Done():
			logger.Printf("stopping: answering the requests in flight")
		case err := <-served:
			return fmt.Errorf("server stopped: %w", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := svc.Shutdown(sctx); err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if !f.load {
		logger.Printf("stopped")
	}
	return loadErr
}

// loadBase loads a shipped base by name, or a checkpoint directory.
func loadBase(name string) (*bases.Base, error) {
	if slices.Contains(bases.Names(), name) {
		return bases.Load(name)
	}
	if st, err := os.Stat(name); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("-base %q is neither a shipped base (%s) nor a checkpoint directory", name, strings.Join(bases.Names(), ", "))
	}
	return bases.LoadDir(name)
}

// engine loads the base and the adapters of -adapters or -store.
func engine(f *flags, logger *log.Logger) (*serve.Engine, error) {
	b, err := loadBase(f.base)
	if err != nil {
		return nil, err
	}
	e, err := serve.New(b, serve.Options{MaxBatch: f.maxBatch, MaxNew: f.maxNew})
	if err != nil {
		return nil, err
	}
	var found []serve.Found
	switch {
	case f.adapters != "":
		if found, err = serve.ScanDir(f.adapters); err != nil {
			return nil, err
		}
	case f.store != "":
		var bad []error
		if found, bad, err = serve.ScanStore(f.store); err != nil {
			return nil, err
		}
		for _, err := range bad {
			logger.Printf("skipped: %v", err)
		}
	}
	loaded, skipped := e.LoadFound(found)
	for _, info := range loaded {
		logger.Printf("loaded %q: %s, %d trainable parameters, %s", info.Name, info.Config, info.Params, info.Serving)
	}
	for _, err := range skipped {
		logger.Printf("skipped: %v", err)
	}
	if len(found) > 0 && len(loaded) == 0 {
		return nil, fmt.Errorf("none of the %d adapters found could be loaded onto base %s (see above)", len(found), e.BaseName())
	}
	return e, nil
}

// loadPrompts are the texts the load cycles over: questions in the style of the lab's tasks.
var loadPrompts = []string{
	"is this mail spam or ham? congratulations, you have won a free cruise, reply now",
	"is this review positive or negative? a slow start, but the last hour is wonderful",
	"what is the topic of this quote? a friend in need is a friend indeed",
	"is this mail spam or ham? the meeting moved to thursday, notes attached",
	"what digit is this?",
	"describe the image",
	"is this review positive or negative? dull, predictable and far too long",
	"what is the topic of this quote? you cannot step into the same river twice",
}

// drive sends the load to url; with e (a server of this process) and -check, it compares
// every answer with the request run alone.
func drive(ctx context.Context, f *flags, url string, e *serve.Engine, stdout io.Writer) error {
	if err := loadgen.CheckLoopback(url); err != nil {
		return err
	}
	listing, err := adapters(ctx, url)
	if err != nil {
		return err
	}
	names := make([]string, 0, f.k)
	for _, a := range listing.Adapters {
		if len(names) < f.k {
			names = append(names, a.Name)
		}
	}
	if len(names) < f.k {
		names = append(names, "") // the base alone
	}
	rng := rand.New(rand.NewPCG(1, 2))
	reqs := make([]loadgen.Request, 0, len(names)*len(loadPrompts))
	for i := range max(len(names)*len(loadPrompts), 1) {
		r := loadgen.Request{Adapter: names[i%len(names)], Text: loadPrompts[(i/len(names))%len(loadPrompts)]}
		if listing.ImageSize > 0 {
			px := make([]float32, listing.ImageSize*listing.ImageSize*listing.Channels)
			for j := range px {
				px[j] = float32(rng.IntN(256)) / 255
			}
			if r.ImagePNG, err = serve.EncodePNG(px, listing.ImageSize, listing.Channels); err != nil {
				return err
			}
		}
		reqs = append(reqs, r)
	}
	fmt.Fprintf(stdout, "load: %d requests, %d at a time, mixing %d adapters (%s) on %s\n",
		f.n, f.conc, len(names), strings.Join(quote(names), ", "), url)
	rep, err := loadgen.Run(ctx, loadgen.Config{URL: url, Requests: reqs, N: f.n, Concurrency: f.conc, Timeout: f.timeout})
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, rep.String())
	mismatches := 0
	if f.check && e != nil {
		want := map[int]string{}
		for i, r := range reqs {
			it := serve.Item{Adapter: r.Adapter, Tokens: e.Prompt(r.Text)}
			if r.ImagePNG != nil {
				c := e.Config()
				if it.Image, err = serve.DecodePNG(r.ImagePNG, c.ImageSize, c.Channels); err != nil {
					return err
				}
			}
			res, err := e.Generate([]serve.Item{it})
			if err != nil {
				return err
			}
			if res[0].Err != nil {
				return res[0].Err
			}
			want[i] = res[0].Text
		}
		for _, o := range rep.Outcomes {
			if o.Status == http.StatusOK && o.Answer != want[o.Index%len(reqs)] {
				mismatches++
			}
		}
		fmt.Fprintf(stdout, "check: %d of %d answers equal the request run alone\n", rep.OK-mismatches, rep.OK)
	}
	if f.jsonOut != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.jsonOut, data, 0o644); err != nil {
			return err
		}
	}
	if rep.Failed+rep.Lost > 0 || mismatches > 0 {
		return fmt.Errorf("load: %d failed, %d lost, %d wrong answers", rep.Failed, rep.Lost, mismatches)
	}
	return nil
}

func quote(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		if n == "" {
			out[i] = "base"
		} else {
			out[i] = fmt.Sprintf("%q", n)
		}
	}
	return out
}

type listing struct {
	ImageSize int `json:"image_size"`
	Channels  int `json:"channels"`
	Adapters  []struct {
		Name string `json:"name"`
	} `json:"adapters"`
}

func adapters(ctx context.Context, url string) (*listing, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v1/adapters", nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask %s for its adapters: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/v1/adapters: %s", url, resp.Status)
	}
	var l listing
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
		return nil, fmt.Errorf("GET %s/v1/adapters: %w", url, err)
	}
	return &l, nil
}

// measure runs serve.Measure and prints its tables and targets.
func measure(f *flags, stdout io.Writer, logger *log.Logger) error {
	b, err := loadBase(f.base)
	if err != nil {
		return err
	}
	cfg := serve.MeasureConfig{Base: b, Batch: 16, Repeats: 9, Progress: func(s string) { logger.Print(s) }}
	if f.fast {
		cfg.Batch, cfg.Repeats, cfg.NewTokens = 8, 3, 4
	}
	m, err := serve.Measure(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "serving measurement, base %s (%d bytes of weights), %s, %s\n", m.Base, m.BaseBytes, m.Date, m.Machine)
	fmt.Fprintf(stdout, "batch of %d, %d prompt tokens, %d generated tokens each, rank %d, median of %d interleaved runs; %d compiles while timing\n\n",
		m.Batch, m.Prompt, m.NewTokens, m.Rank, m.Repeats, m.Compiles)
	h, rows := m.TimeTable()
	nbui.WriteTableText(stdout, h, rows)
	fmt.Fprintln(stdout)
	h, rows = m.MemoryTable()
	nbui.WriteTableText(stdout, h, rows)
	fmt.Fprintln(stdout)
	for _, t := range m.Targets() {
		verdict := "MET"
		if !t.Met {
			verdict = "NOT MET"
		}
		fmt.Fprintf(stdout, "%-7s %s: %s (target %s)\n", verdict, t.What, t.Value, t.Bar)
	}
	if f.jsonOut != "" {
		data, err := json.MarshalIndent(struct {
			*serve.Measurement
			Targets []serve.Target `json:"targets"`
		}{m, m.Targets()}, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(f.jsonOut, data, 0o644)
	}
	return nil
}
