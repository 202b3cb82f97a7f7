// Package loadgen drives peftlab's inference service (package service) on the loopback
// interface with a bounded number of requests at a bounded concurrency, and reports
// throughput and latency percentiles. It refuses any address that is not on this machine's
// loopback, so a load test never leaves it.
package loadgen

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Request is one prediction to send.
type Request struct {
	Adapter  string
	Text     string
	ImagePNG []byte // nil for text-only
	MaxNew   int    // 0: the server's default
	// MaxPromptTokens cuts the text to that many tokens on the server (0: no cut).
	MaxPromptTokens int
}

// Config is a load to send.
type Config struct {
	// URL is the service's base URL, e.g. http://127.0.0.1:8080; its host must be a
	// loopback address or "localhost".
	URL string
	// Requests are sent in order, cycling, N in all (default len(Requests)).
	Requests []Request
	N        int
	// Concurrency is the number of requests in flight at once (default 8).
	Concurrency int
	// Timeout bounds each request (default 60 s) and Deadline the whole run (default 10
	// minutes): a stalled server ends the run instead of hanging it.
	Timeout, Deadline time.Duration
}

// Outcome is what happened to one request.
type Outcome struct {
	Index   int
	Request Request
	// Status is the HTTP status, 0 when no response came (the request was lost).
	Status int
	// Answer is the generated text (status 200), Error the server's message or the
	// transport error.
	Answer  string
	Error   string
	Latency time.Duration
}

// Report summarizes a run.
type Report struct {
	Sent, OK, Failed, Lost int
	Elapsed                time.Duration
	// Throughput is answered requests per second of the run.
	Throughput         float64
	P50, P95, P99, Max time.Duration
	ByStatus           map[int]int
	Outcomes           []Outcome
}

// String is the report in a few lines.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests in %.2f s: %d ok, %d failed, %d lost; %.1f requests/s\n",
		r.Sent, r.Elapsed.Seconds(), r.OK, r.Failed, r.Lost, r.Throughput)
	fmt.Fprintf(&b, "latency p50 %s  p95 %s  p99 %s  max %s\n", ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max))
	if len(r.ByStatus) > 0 {
		codes := make([]int, 0, len(r.ByStatus))
		for c := range r.ByStatus {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%d: %d", c, r.ByStatus[c])
		}
		fmt.Fprintf(&b, "status codes: %s\n", strings.Join(parts, ", "))
	}
	return b.String()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

// CheckLoopback fails unless rawURL is an http URL whose host is a loopback address or
// "localhost".
func CheckLoopback(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("loadgen: bad URL %q: %w", rawURL, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("loadgen: URL %q: only http:// on the loopback interface is driven", rawURL)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("loadgen: %s is not a loopback address: the load generator only drives a server on this machine (127.0.0.1, ::1, localhost)", host)
}

// Run sends the load and waits for every answer.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := CheckLoopback(cfg.URL); err != nil {
		return nil, err
	}
	if len(cfg.Requests) == 0 {
		return nil, errors.New("loadgen: no requests given")
	}
	n := cfg.N
	if n <= 0 {
		n = len(cfg.Requests)
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = 8
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	deadline := cfg.Deadline
	if deadline <= 0 {
		deadline = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc}}
	defer client.CloseIdleConnections()
	endpoint := strings.TrimRight(cfg.URL, "/") + "/v1/predict"

	out := make([]Outcome, n)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = send(ctx, client, endpoint, i, cfg.Requests[i%len(cfg.Requests)])
			}
		}()
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			for j := i; j < n; j++ {
				out[j] = Outcome{Index: j, Request: cfg.Requests[j%len(cfg.Requests)], Error: "not sent: " + ctx.Err().Error()}
			}
			break feed
		}
	}
	close(next)
	wg.Wait()
	return summarize(out, time.Since(start)), nil
}

type predictBody struct {
	Adapter         string `json:"adapter"`
	Text            string `json:"text"`
	ImagePNGBase64  string `json:"image_png_base64,omitempty"`
	MaxNewTokens    int    `json:"max_new_tokens,omitempty"`
	MaxPromptTokens int    `json:"max_prompt_tokens,omitempty"`
}

func send(ctx context.Context, client *http.Client, endpoint string, i int, r Request) Outcome {
	o := Outcome{Index: i, Request: r}
	body := predictBody{Adapter: r.Adapter, Text: r.Text, MaxNewTokens: r.MaxNew, MaxPromptTokens: r.MaxPromptTokens}
	if r.ImagePNG != nil {
		body.ImagePNGBase64 = base64.StdEncoding.EncodeToString(r.ImagePNG)
	}
	data, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(data))
	if err != nil {
		o.Error = err.Error()
		return o
	}
	req.Header.Set("Content-Type", "application/json")
	t := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		o.Error, o.Latency = err.Error(), time.Since(t)
		return o
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	o.Latency = time.Since(t)
	if err != nil {
		o.Error = "reading the answer: " + err.Error()
		return o
	}
	o.Status = resp.StatusCode
	var ans struct {
		Answer string `json:"answer"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(raw, &ans); err != nil {
		o.Error = fmt.Sprintf("answer is not JSON: %.200s", raw)
		return o
	}
	o.Answer, o.Error = ans.Answer, ans.Error
	return o
}

func summarize(out []Outcome, elapsed time.Duration) *Report {
	r := &Report{Sent: len(out), Elapsed: elapsed, ByStatus: map[int]int{}, Outcomes: out}
	var lat []time.Duration
	for _, o := range out {
		switch {
		case o.Status == 0:
			r.Lost++
		case o.Status == http.StatusOK:
			r.OK++
			lat = append(lat, o.Latency)
		default:
			r.Failed++
		}
		if o.Status != 0 {
			r.ByStatus[o.Status]++
		}
	}
	if elapsed > 0 {
		r.Throughput = float64(r.OK) / elapsed.Seconds()
	}
	slices.Sort(lat)
	r.P50, r.P95, r.P99 = Percentile(lat, 50), Percentile(lat, 95), Percentile(lat, 99)
	if len(lat) > 0 {
		r.Max = lat[len(lat)-1]
	}
	return r
}

// Percentile is the p-th percentile of sorted durations by the nearest-rank method (the
// smallest value with at least p% of the values at or below it); 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(len(sorted))*p/100)) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}
