package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/peftlab/peftlab/pkg/mode"
)

// labOptions are the settings of `lab`.
type labOptions struct {
	Dir     string // directory served
	IP      string // interface to listen on: 127.0.0.1 except inside a container
	Port    int
	UI      string // "auto", "lab" or "notebook"
	Browser bool
}

func cmdLab(args []string) error {
	fs := flag.NewFlagSet("lab", flag.ContinueOnError)
	opt := labOptions{}
	fs.StringVar(&opt.Dir, "dir", "", "directory to serve (default: notebooks/ of the checkout)")
	fs.StringVar(&opt.IP, "ip", "127.0.0.1", "interface to listen on; change it only inside a container whose port is published on the host's 127.0.0.1 (see docker/)")
	fs.IntVar(&opt.Port, "port", 8888, "port on 127.0.0.1, 1 to 65535 (another free port is used when it is taken), or 0 for any free port")
	fs.StringVar(&opt.UI, "ui", "auto", "auto (JupyterLab when installed, else classic Notebook), lab or notebook")
	fs.BoolVar(&opt.Browser, "browser", false, "open a web browser")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: go run ./kernel lab [flags]\n\n"+
			"Starts Jupyter on 127.0.0.1 only, with token authentication, serving the notebooks, and prints the URL.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if err := checkPort(opt.Port); err != nil {
		return exitError{code: 2, msg: "kernel lab: " + err.Error()}
	}
	if opt.Dir == "" {
		wd, _ := os.Getwd()
		root := moduleRoot(wd)
		if root == "" {
			return fmt.Errorf("not inside the peftlab checkout: run from the checkout or pass -dir")
		}
		opt.Dir = filepath.Join(root, "notebooks")
	}
	return lab(newLogger("lab"), opt)
}

// labServer is a Jupyter server command ready to start, with the URL it will serve.
type labServer struct {
	Cmd   *exec.Cmd
	URL   string // with the token
	Token string
	UI    string
	IP    string
	Port  int
	// cleanup removes the kernel overlay, if one was made; call it after the server exits.
	cleanup func()
}

// newLabServer prepares (does not start) Jupyter for dir on 127.0.0.1. The token is random,
// 32 bytes, and passed in the environment (JUPYTER_TOKEN), where other users of the machine
// cannot read it, unlike the command line.
func newLabServer(opt labOptions) (*labServer, error) {
	dir, err := filepath.Abs(opt.Dir)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("no directory %s to serve", dir)
	}
	ui := opt.UI
	switch ui {
	case "auto":
		ui = "notebook"
		if haveJupyter("lab") {
			ui = "lab"
		}
	case "lab", "notebook":
		if !haveJupyter(ui) {
			return nil, fmt.Errorf("jupyter %s is not installed: run `go run ./kernel install` (it installs JupyterLab from PyPI; where PyPI cannot be reached, only the classic Notebook)", ui)
		}
	default:
		return nil, fmt.Errorf("-ui %q: want auto, lab or notebook", opt.UI)
	}
	if !haveJupyter(ui) {
		return nil, fmt.Errorf("no Jupyter browser UI is installed: run `go run ./kernel install`")
	}
	spec, err := registeredKernel()
	if err != nil {
		return nil, err
	}
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	ip := opt.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	if net.ParseIP(ip) == nil {
		return nil, fmt.Errorf("-ip %q is not an IP address", ip)
	}
	port, err := freePort(ip, opt.Port)
	if err != nil {
		return nil, err
	}
	s := &labServer{Token: token, UI: ui, IP: ip, Port: port, cleanup: func() {}}
	// A browser shows these notebooks: interactive views (lab.Explore) show their controls,
	// even when the caller's environment says headless (see mode.EnvHeadless).
	env := jupyterEnv("JUPYTER_TOKEN="+token, mode.EnvHeadless+"=")
	// The caller's GOMLX_BACKEND and GOEXPERIMENT win over the registered ones, for this server
	// only; so does simd in GOEXPERIMENT when the registration predates it.
	if want := runEnv(spec); !envIncluded(want, spec.Env) {
		overlay, err := os.MkdirTemp("", "peftlab-lab-kernel-")
		if err != nil {
			return nil, err
		}
		s.cleanup = func() { os.RemoveAll(overlay) }
		jp, err := overlayKernel(spec, overlay, nil, want)
		if err != nil {
			s.cleanup()
			return nil, err
		}
		env = append(env, "JUPYTER_PATH="+jp)
	}
	bin, err := jupyterSub(ui)
	if err != nil {
		s.cleanup()
		return nil, err
	}
	s.Cmd = exec.Command(bin, labArgs(ui, ip, dir, port, opt.Browser, os.Geteuid() == 0)...)
	s.Cmd.Env = env
	s.Cmd.Dir = dir
	page := "tree"
	if ui == "lab" {
		page = "lab"
	}
	s.URL = fmt.Sprintf("http://127.0.0.1:%d/%s?token=%s", port, page, token)
	return s, nil
}

// envIncluded reports whether every variable of want has the same value in env.
func envIncluded(want, env map[string]string) bool {
	for k, v := range want {
		if env[k] != v {
			return false
		}
	}
	return true
}

// labArgs is the command line after jupyter-<ui>. The flags used exist with the same meaning in
// classic Notebook 6, Notebook 7 and JupyterLab: listen on one interface (the loopback one
// unless inside a container), on exactly this port (no silent move to another port, which would
// make the printed URL wrong). JupyterLab is also told not to fetch its news feed nor check
// PyPI for updates: the lab makes no request to the internet.
func labArgs(ui, ip, dir string, port int, browser, root bool) []string {
	args := []string{"--ip=" + ip, "--port=" + strconv.Itoa(port), "--port-retries=0", "--notebook-dir=" + dir}
	if ui == "lab" {
		args = append(args, "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate")
	}
	if !browser {
		args = append(args, "--no-browser")
	}
	if root {
		args = append(args, "--allow-root") // Jupyter refuses to run as root without it (containers, CI)
	}
	return args
}

// newToken returns 32 random bytes in hex: never empty, never guessable.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate the Jupyter token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// checkPort refuses a port number no socket can have: -port 99999 used to be reported as
// "taken" and -port -1 to pick a random port, both silently serving somewhere else.
func checkPort(port int) error {
	if port < 0 || port > 65535 {
		return fmt.Errorf("-port %d is not a port number: use 1 to 65535, or 0 for any free port", port)
	}
	return nil
}

// freePort returns port if it is free on ip, else a free port chosen by the system (port 0
// asks for that directly).
func freePort(ip string, port int) (int, error) {
	if err := checkPort(port); err != nil {
		return 0, err
	}
	if port > 0 {
		if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			l.Close()
			return port, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lab runs Jupyter in the foreground until it exits or this process is interrupted.
func lab(log *logger, opt labOptions) error {
	s, err := newLabServer(opt)
	if err != nil {
		return err
	}
	defer s.cleanup()
	if !net.ParseIP(s.IP).IsLoopback() {
		log.printf("warning: listening on %s, not only on this machine's loopback interface: publish the port on the host's 127.0.0.1 only (docker run -p 127.0.0.1:%d:%d)", s.IP, s.Port, s.Port)
	}
	if opt.Port > 0 && s.Port != opt.Port {
		log.printf("port %d is taken, using %d", opt.Port, s.Port)
	}
	s.Cmd.Stdout, s.Cmd.Stderr = os.Stderr, os.Stderr
	// Own process group: Ctrl-C reaches only this program, which stops Jupyter with SIGTERM
	// (Jupyter would otherwise stop to ask "Shutdown this notebook server (y/[n])?").
	s.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.Cmd.Start(); err != nil {
		return fmt.Errorf("start jupyter %s: %w", s.UI, err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		_ = s.Cmd.Process.Signal(syscall.SIGTERM)
	}()
	fmt.Printf("\npeftlab lab (Jupyter %s) serving %s\n\n    %s\n\nPress Ctrl-C to stop.\n\n", s.UI, opt.Dir, s.URL)
	err = s.Cmd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && !exitErr.Exited() {
		return nil // stopped by our SIGTERM
	}
	if err != nil {
		return fmt.Errorf("jupyter %s: %w", s.UI, err)
	}
	return nil
}
