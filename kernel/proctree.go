package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runMarkerEnv is set in nbconvert's environment with a value unique to one notebook run. Every
// process the run starts inherits it: the Jupyter kernel (which jupyter_client starts in a new
// session, so outside nbconvert's process group), GoNB's gopls and the cell programs, including
// those that outlive their parent and are adopted by init. Finding a run's processes by it, as
// well as by parentage, is what lets a time-out or an interrupt stop all of them, not only
// nbconvert: killing nbconvert alone used to leave the kernel, gopls and a looping cell program
// running at full CPU.
const runMarkerEnv = "PEFTLAB_EXEC_RUN"

// newRunMarker returns a fresh value for runMarkerEnv.
func newRunMarker() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b))
}

// killRun stops every process of one run: root (when > 0) and its descendants, and every
// process whose environment carries marker. Each round freezes the processes it finds
// (SIGSTOP, so none forks a new one meanwhile), then kills them (SIGKILL); rounds repeat until
// none is left. It returns how many processes it killed.
func killRun(root int, marker string) int {
	killed := map[int]bool{}
	for round := 0; round < 20; round++ {
		var live []int
		for _, pid := range runProcesses(root, marker) {
			if !killed[pid] {
				live = append(live, pid)
			}
		}
		if len(live) == 0 {
			break
		}
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
		for _, pid := range live {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed[pid] = true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return len(killed)
}

// runProcesses lists the live processes of a run (see killRun), never this process. Where
// there is no /proc (not Linux) it finds only root's process group.
func runProcesses(root int, marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		if root > 0 && syscall.Kill(-root, 0) == nil {
			return []int{-root} // the process group: Setpgid makes root its leader
		}
		return nil
	}
	self := os.Getpid()
	children := map[int][]int{}
	var marked []int
	want := []byte(runMarkerEnv + "=" + marker + "\x00")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		ppid, state, ok := procStat(pid)
		if !ok || state == 'Z' || state == 'X' {
			continue // gone, or a zombie: dead already, its parent reaps it
		}
		children[ppid] = append(children[ppid], pid)
		if marker != "" {
			if env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ")); err == nil && bytes.Contains(env, want) {
				marked = append(marked, pid)
			}
		}
	}
	seen := map[int]bool{}
	var out []int
	add := func(pid int) {
		if !seen[pid] && pid != self {
			seen[pid] = true
			out = append(out, pid)
		}
	}
	if root > 0 {
		if _, state, ok := procStat(root); ok && state != 'Z' {
			add(root)
		}
		for queue := children[root]; len(queue) > 0; queue = queue[1:] {
			add(queue[0])
			queue = append(queue, children[queue[0]]...)
		}
	}
	for _, pid := range marked {
		add(pid)
	}
	return out
}

// procStat reads a process's parent and state from /proc/PID/stat.
func procStat(pid int) (ppid int, state byte, ok bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, 0, false
	}
	// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so cut at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}
