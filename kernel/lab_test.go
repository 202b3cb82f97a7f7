package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLabArgs(t *testing.T) {
	args := labArgs("notebook", "127.0.0.1", "/srv/nb", 8890, false, true)
	for _, want := range []string{"--ip=127.0.0.1", "--port=8890", "--port-retries=0", "--notebook-dir=/srv/nb", "--no-browser", "--allow-root"} {
		if !slices.Contains(args, want) {
			t.Errorf("labArgs lacks %q: %v", want, args)
		}
	}
	for _, a := range args {
		if strings.Contains(strings.ToLower(a), "token") || strings.Contains(a, "0.0.0.0") {
			t.Errorf("labArgs has %q: the token goes in the environment, the server on loopback only", a)
		}
	}
	lab := labArgs("lab", "127.0.0.1", "/d", 1, true, false)
	if slices.Contains(lab, "--no-browser") {
		t.Error("-browser still passes --no-browser")
	}
	// JupyterLab fetches a news feed and checks for updates unless told not to.
	for _, want := range []string{"--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"} {
		if !slices.Contains(lab, want) || slices.Contains(args, want) {
			t.Errorf("%s: want it for JupyterLab only", want)
		}
	}
}

// Port numbers no socket can have are refused, not reported as taken or replaced by a random
// port.
func TestLabRefusesBadPorts(t *testing.T) {
	for _, port := range []string{"99999", "-1", "65536"} {
		err := run([]string{"lab", "-port", port})
		var exit exitError
		if !errors.As(err, &exit) || exit.code != 2 || !strings.Contains(exit.msg, "-port "+port+" is not a port number") {
			t.Errorf("lab -port %s: got %v, want a usage error naming the port", port, err)
		}
	}
	if _, err := freePort("127.0.0.1", 70000); err == nil {
		t.Error("freePort accepts port 70000")
	}
	if p, err := freePort("127.0.0.1", 0); err != nil || p <= 0 {
		t.Errorf("freePort(0) = %d, %v; want a free port", p, err)
	}
}

func TestToken(t *testing.T) {
	a, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := newToken()
	if len(a) != 64 || a == b {
		t.Errorf("tokens %q, %q: want two different 64-hex-digit tokens", a, b)
	}
}

// Starts the real server: with the token it serves the notebook list and offers the peftlab
// kernel; without the token it refuses.
func TestLabServes(t *testing.T) {
	needKernel(t)
	dir := t.TempDir()
	s, err := newLabServer(labOptions{Dir: dir, IP: "127.0.0.1", Port: 0, UI: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.cleanup()
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") || !strings.HasSuffix(s.URL, "token="+s.Token) || s.Token == "" {
		t.Fatalf("URL %q", s.URL)
	}
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = s.Cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { s.Cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = s.Cmd.Process.Kill()
		}
	}()
	client := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	base := strings.SplitN(s.URL, "/", 4)[:3] // http: "" 127.0.0.1:port
	api := strings.Join(base, "/") + "/api/kernelspecs"
	get := func(url string, token bool) (*http.Response, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if token {
			req.Header.Set("Authorization", "token "+s.Token)
		}
		return client.Do(req)
	}
	var resp *http.Response
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err = get(api, true)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer within 60s: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	var specs struct {
		Kernelspecs map[string]struct {
			Spec struct {
				DisplayName string `json:"display_name"`
			} `json:"spec"`
		} `json:"kernelspecs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&specs)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("GET /api/kernelspecs with token: status %d, %v", resp.StatusCode, err)
	}
	if got := specs.Kernelspecs[kernelName].Spec.DisplayName; got != kernelDisplay {
		t.Errorf("kernel %q offered as %q, want %q (specs: %v)", kernelName, got, kernelDisplay, specs.Kernelspecs)
	}
	if resp, err := get(s.URL, false); err != nil || resp.StatusCode != 200 {
		t.Errorf("GET %s: %v %v, want 200", s.URL, resp, err)
	}
	if resp, err := get(api, false); err != nil || resp.StatusCode != 403 {
		t.Errorf("GET /api/kernelspecs without token: %v %v, want 403", resp, err)
	}
	page := strings.SplitN(s.URL, "?", 2)[0]
	if resp, err := get(page, false); err != nil || (resp.StatusCode != 302 && resp.StatusCode != 403) {
		t.Errorf("GET %s without token: %v %v, want a redirect to the login page or 403", page, resp, err)
	}
}
