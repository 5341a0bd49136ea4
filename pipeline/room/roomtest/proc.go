package roomtest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logTailLines is how much of a helper's log a failing test prints.
const logTailLines = 80

// proc is a helper process: its own process group, output in a log file,
// SIGKILLed (with its group) at the end of the test that started it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when it has exited
	err  error         // its exit, once done is closed
	once sync.Once     // kill
	cpu  time.Duration // CPU of its process group, set by kill
}

// startProc starts argv in dir with env, logging to ArtifactDir/name.log.
// At the end of t it is killed, and its log tail is printed if t failed.
func startProc(t testing.TB, name, dir string, env []string, argv ...string) *proc {
	t.Helper()
	if !InNamespace() {
		t.Fatal(errNotInNamespace)
	}
	// ArtifactDir first: its removal is then the last cleanup, after the
	// kill and the dump below.
	logPath := filepath.Join(t.ArtifactDir(), name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	fmt.Fprintf(f, "roomtest: %s: %q in %s\n", time.Now().Format(time.StampMilli), argv, dir)
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if testing.Verbose() {
			t.Logf("%s: CPU %.2fs (its process group)", name, p.cpu.Seconds())
		}
		if t.Failed() {
			t.Logf("%s log (%s), last %d lines:\n%s", name, logPath, logTailLines, tailFile(logPath, logTailLines))
		}
	})
	return p
}

// kill SIGKILLs the process group and waits for the leader to exit.
// Descendants that left the group, or were reparented, die with the
// namespace; init reaps them.
func (p *proc) kill() {
	p.once.Do(func() {
		// The group may outlive its leader (Agent.KillWorker): kill it anyway.
		p.cpu = groupCPU(p.cmd.Process.Pid)
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if p.cpu == 0 { // the leader had exited by itself
			p.cpu = p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
		}
	})
	<-p.done
}

// groupCPU sums the CPU time (user+system, with reaped children) of the
// live processes of a process group, from this namespace's own /proc.
func groupCPU(pgid int) time.Duration {
	const clkTck = 100 // USER_HZ on every Linux architecture Go supports
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')') // comm may contain anything
		if i < 0 {
			continue
		}
		// After "pid (comm) ": state ppid pgrp ... utime(14) stime cutime cstime.
		fs := strings.Fields(string(b[i+1:]))
		if len(fs) < 15 || fs[2] != strconv.Itoa(pgid) {
			continue
		}
		for _, k := range fs[11:15] {
			n, _ := strconv.ParseInt(k, 10, 64)
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clkTck
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor polls ready until it returns nil, the process exits, or timeout.
func (p *proc) waitFor(what string, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		if p.exited() {
			return fmt.Errorf("%s exited (%v) before %s", p.name, p.err, what)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: no %s after %s: %v", p.name, what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLog waits until the log contains s.
func (p *proc) waitLog(s string, timeout time.Duration) error {
	var off int64
	var carry []byte
	return p.waitFor(fmt.Sprintf("%q in its log", s), timeout, func() error {
		f, err := os.Open(p.log)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(io.NewSectionReader(f, off, 1<<40))
		if err != nil {
			return err
		}
		off += int64(len(b))
		buf := append(carry, b...)
		if bytes.Contains(buf, []byte(s)) {
			return nil
		}
		if k := len(s) - 1; len(buf) > k {
			carry = append([]byte(nil), buf[len(buf)-k:]...)
		} else {
			carry = buf
		}
		return fmt.Errorf("not yet")
	})
}

// Ports: the namespace is private to this test binary, so a counter below
// the ephemeral range (32768-60999) never collides with another run; each
// port is still probed (TCP and UDP) in case a test bound it itself.
var (
	nextPort atomic.Int32
	portMu   sync.Mutex
)

func init() { nextPort.Store(20000) }

// FreePort returns a port free for TCP and UDP on host, never returned
// before in this process.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 1000 {
		p := int(nextPort.Add(1))
		addr := net.JoinHostPort(host, strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return p
	}
	t.Fatalf("no free port on %s", host)
	return 0
}

// childEnv is the environment for helper processes: this process's,
// without variables that would point them elsewhere, plus set.
func childEnv(drop func(k string) bool, set map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if drop(k) {
			continue
		}
		if _, ok := set[k]; ok {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

// isLiveKitVar: LIVEKIT_* variables configure livekit-server (LIVEKIT_KEYS,
// LIVEKIT_CONFIG, ...) and agents (LIVEKIT_URL, cloud credentials); helpers
// get only what roomtest sets.
func isLiveKitVar(k string) bool { return strings.HasPrefix(k, "LIVEKIT_") }
