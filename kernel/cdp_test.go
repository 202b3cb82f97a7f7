package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A minimal client of the Chrome DevTools Protocol over --remote-debugging-pipe: Chromium reads
// commands from file descriptor 3 and writes replies and events to descriptor 4, each message
// JSON ended by a NUL byte. It needs no WebSocket library and no port, and the browser cannot
// outlive the test (its pipes close with it). Only what the JupyterLab browser test uses is
// here: targets with flat sessions, Runtime.evaluate, Network events, screenshots.

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    json.RawMessage `json:"params,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

type browser struct {
	cmd     *exec.Cmd
	w       io.WriteCloser
	stderr  *lockedWriter
	writeMu sync.Mutex

	mu      sync.Mutex
	nextID  int64
	pending map[int64]chan cdpMessage
	onEvent func(cdpMessage) // called on the reader goroutine, must not block on calls
	closed  chan struct{}
	readErr error
}

// startBrowser starts headless Chromium driven over the pipe. Every request that is not to the
// loopback interface goes to a closed proxy port and no host name resolves: nothing can leave
// the machine, and the test watches for attempts (see the Network events).
func startBrowser(ctx context.Context, bin, userDir string, onEvent func(cdpMessage)) (*browser, error) {
	toChrome, chromeIn, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	chromeOut, fromChrome, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
		"--user-data-dir="+userDir, "--no-first-run", "--no-default-browser-check",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
		"--disable-extensions", "--mute-audio", "--hide-scrollbars",
		"--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
		"--window-size=1280,1800", "about:blank")
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b := &browser{cmd: cmd, w: chromeIn, stderr: &lockedWriter{}, pending: map[int64]chan cdpMessage{},
		onEvent: onEvent, closed: make(chan struct{})}
	cmd.Stderr = b.stderr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	toChrome.Close()
	fromChrome.Close()
	go b.read(chromeOut)
	return b, nil
}

// lockedWriter keeps the first MiB of what is written to it (the browser's stderr).
type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() < 1<<20 {
		w.b.Write(p)
	}
	return len(p), nil
}

func (b *browser) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		raw, err := br.ReadBytes(0)
		if err != nil {
			b.mu.Lock()
			b.readErr = err
			b.mu.Unlock()
			close(b.closed)
			return
		}
		var m cdpMessage
		if err := json.Unmarshal(raw[:len(raw)-1], &m); err != nil {
			continue
		}
		if m.ID != 0 {
			b.mu.Lock()
			ch := b.pending[m.ID]
			delete(b.pending, m.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		if b.onEvent != nil {
			b.onEvent(m)
		}
	}
}

// call sends one command (to a session's target when session is not "") and decodes its result
// into result (when not nil).
func (b *browser) call(ctx context.Context, session, method string, params, result any) error {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan cdpMessage, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	if params == nil {
		params = struct{}{}
	}
	p, err := json.Marshal(params)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(cdpMessage{ID: id, Method: method, Params: p, SessionID: session})
	if err != nil {
		return err
	}
	b.writeMu.Lock()
	_, err = b.w.Write(append(msg, 0))
	b.writeMu.Unlock()
	if err != nil {
		return fmt.Errorf("%s: write to the browser: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (code %d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-b.closed:
		return fmt.Errorf("%s: the browser closed its pipe (%v); its stderr:\n%s", method, b.readErr, tail(b.stderr.String(), 2000))
	case <-ctx.Done():
		b.mu.Lock()
		delete(b.pending, id)
		b.mu.Unlock()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// eval evaluates a JavaScript expression in the page (awaiting a promise) and decodes its value
// into result (when not nil). A thrown exception is returned as the error.
func (b *browser) eval(ctx context.Context, session, expr string, result any) error {
	var r struct {
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	err := b.call(ctx, session, "Runtime.evaluate", map[string]any{
		"expression": expr, "awaitPromise": true, "returnByValue": true,
	}, &r)
	if err != nil {
		return err
	}
	if e := r.ExceptionDetails; e != nil {
		msg := e.Exception.Description
		if msg == "" {
			msg = e.Text
		}
		return fmt.Errorf("javascript: %s", msg)
	}
	if result != nil && len(r.Result.Value) > 0 {
		return json.Unmarshal(r.Result.Value, result)
	}
	return nil
}

// waitFor evaluates cond (a JavaScript expression, possibly a promise) every 250ms until it is
// true, or fails at the time limit.
func (b *browser) waitFor(ctx context.Context, session, what, cond string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var lastErr error
	for {
		var ok bool
		err := b.eval(ctx, session, "Promise.resolve("+cond+").then(Boolean)", &ok)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return fmt.Errorf("waiting %s for %s: %w (last error: %v)", limit, what, ctx.Err(), lastErr)
			}
			return fmt.Errorf("waiting %s for %s: %w", limit, what, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// screenshot writes a PNG of the page's viewport to path.
func (b *browser) screenshot(ctx context.Context, session, path string) error {
	var r struct {
		Data string `json:"data"`
	}
	if err := b.call(ctx, session, "Page.captureScreenshot", map[string]any{"format": "png"}, &r); err != nil {
		return err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return err
	}
	return os.WriteFile(path, png, 0o644)
}

// close ends the browser: Browser.close, then a kill after a few seconds.
func (b *browser) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.call(ctx, "", "Browser.close", nil, nil)
	done := make(chan struct{})
	go func() { _ = b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	b.w.Close()
}
