package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets the SIGTERM test run this test binary as the server.
func TestMain(m *testing.M) {
	if os.Getenv("PEFTLAB_SERVE_CHILD") == "1" {
		var args []string
		if err := json.Unmarshal([]byte(os.Getenv("PEFTLAB_SERVE_ARGS")), &args); err != nil {
			panic(err)
		}
		os.Args = append([]string{"serve"}, args...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestSIGTERMDrains starts the real command in a child process, sends it requests that wait
// for their batch, then SIGTERM: every request must be answered and the process exit 0.
func TestSIGTERMDrains(t *testing.T) {
	args, _ := json.Marshal([]string{"-addr", "127.0.0.1:0", "-max-delay", "2s", "-max-new", "2"})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PEFTLAB_SERVE_CHILD=1", "PEFTLAB_SERVE_ARGS="+string(args))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	var url string
	var log bytes.Buffer
	re := regexp.MustCompile(`on (http://127\.0\.0\.1:\d+)`)
	deadline := time.AfterFunc(2*time.Minute, func() { cmd.Process.Kill() })
	defer deadline.Stop()
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		if m := re.FindStringSubmatch(lines.Text()); m != nil {
			url = m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("the server did not say where it listens:\n%s", log.String())
	}
	rest := make(chan struct{})
	go func() {
		for lines.Scan() {
			log.WriteString(lines.Text() + "\n")
		}
		close(rest)
	}()
	const n = 4
	statuses := make(chan int, n)
	for range n {
		go func() {
			resp, err := http.Post(url+"/v1/predict", "application/json", strings.NewReader(`{"text": "is this mail spam or ham?"}`))
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	// Wait until the server holds all of them (they wait for their batch to fill).
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if inFlight(url) >= n {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("the requests never reached the server:\n%s", log.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for range n {
		if s := <-statuses; s != http.StatusOK {
			t.Errorf("a request in flight at SIGTERM got status %d", s)
		}
	}
	err = cmd.Wait()
	<-rest
	if err != nil {
		t.Errorf("the server exited with %v:\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "stopped") {
		t.Errorf("the server did not say it stopped:\n%s", log.String())
	}
}

// TestLoadCheck runs the load mode end to end: a server in this process with synthetic
// adapters, a small load, every answer checked against the request run alone.
func TestLoadCheck(t *testing.T) {
	var out, errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := run(ctx, []string{"-load", "-n", "12", "-c", "4", "-k", "3", "-check", "-max-new", "2", "-synthetic-rank", "4"}, &out, &errs)
	if err != nil {
		t.Fatalf("%v\n%s\n%s", err, out.String(), errs.String())
	}
	for _, want := range []string{"12 ok, 0 failed, 0 lost", "p99", "check: 12 of 12"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("load output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestFlags(t *testing.T) {
	var out, errs bytes.Buffer
	for _, args := range [][]string{{"-adapters", "a", "-store", "b"}, {"-load", "-url", "http://127.0.0.1:1", "-check"}, {"-n", "0"}, {"extra"}, {"-base", "/nonexistent"}} {
		if err := run(context.Background(), args, &out, &errs); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if err := run(context.Background(), []string{"-load", "-url", "http://10.0.0.1:80"}, &out, &errs); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("-load to a non-loopback address: %v", err)
	}
}

// inFlight reads the server's in-flight gauge from /metrics (-1 when it cannot).
func inFlight(url string) float64 {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "peftlab_http_requests_in_flight "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}
