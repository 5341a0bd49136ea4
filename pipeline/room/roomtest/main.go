package roomtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio/pulsetest"
)

// The stage of this process (see the package documentation).
const (
	envStage  = "ROOMTEST_STAGE"
	envDeps   = "ROOMTEST_DEPS" // JSON deps, from the outer process to the test process
	stageInit = "init"
	stageTest = "test"
)

// deps are the prepared dependencies; set in the test process.
var deps *Deps

// Deps locates what the outer process prepared.
type Deps struct {
	Cache    string // the cache directory
	Server   string // livekit-server binary
	Node     string // node binary
	AgentDir string // agent.mjs and its node_modules
}

// Main runs m's tests inside a fresh network namespace. Call it from
// TestMain; it never returns. It fails the run (exit status 1, with a
// message) when it cannot build that namespace: room tests never skip.
func Main(m *testing.M) {
	switch stage := os.Getenv(envStage); stage {
	case "":
		os.Exit(outer())
	case stageInit:
		os.Exit(initProcess())
	case stageTest:
		os.Exit(testProcess(m))
	default:
		fatalf("%s=%q: unknown stage", envStage, stage)
	}
}

// InNamespace reports whether this is the test process inside the namespace.
func InNamespace() bool { return deps != nil }

// Dependencies returns the prepared dependencies (nil outside the namespace).
func Dependencies() *Deps { return deps }

func logf(format string, args ...any) { fmt.Fprintf(os.Stderr, "roomtest: "+format+"\n", args...) }

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL roomtest: "+format+"\n", args...)
	os.Exit(1)
}

// outer prepares dependencies and runs the binary again as PID 1 of new
// net+pid+mount namespaces.
func outer() int {
	if os.Geteuid() != 0 {
		fatalf("room tests create a network namespace and need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); " +
			"run them as root, e.g. `sudo -E go test ...` or in a privileged CI container. They are never skipped.")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		fatalf("`ip` not found: install iproute2 (apt-get install iproute2)")
	}
	d, err := prepare()
	if err != nil {
		fatalf("preparing dependencies: %v", err)
	}
	// Rooms talk in real time: one such package at a time on the machine.
	unlock, err := pulsetest.LockRealtime()
	if err != nil {
		fatalf("%v", err)
	}
	defer unlock()
	js, _ := json.Marshal(d)
	exe, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = childEnv(isStageVar, map[string]string{envStage: stageInit, envDeps: string(js)})
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS,
		// If this process dies (go test's timeout kill, a crash), the kernel
		// SIGKILLs init, and with it the whole PID namespace. Pdeathsig is
		// tied to the thread that forked: keep this goroutine on it.
		Pdeathsig: syscall.SIGKILL,
	}
	runtime.LockOSThread()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) {
			fatalf("cannot create network/PID/mount namespaces: %v (in a container: run it privileged, "+
				"or with CAP_SYS_ADMIN+CAP_NET_ADMIN and no seccomp filter on clone/unshare; check user.max_net_namespaces)", err)
		}
		fatalf("starting the namespace: %v", err)
	}
	go func() {
		// SIGQUIT too: go test's timeout sends it, and the goroutine dump
		// that matters is the inner one.
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			fatalf("waiting for the namespace: %v", err)
		}
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			logf("namespace init killed by %v", ws.Signal())
			code = 128 + int(ws.Signal())
		}
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		// init reaps everything inside, so this is the whole namespace.
		logf("namespace ran %.1fs; CPU of all its processes: user %.1fs, sys %.1fs; largest RSS %d MB",
			time.Since(start).Seconds(), tv(ru.Utime), tv(ru.Stime), ru.Maxrss/1024)
	}
	return code
}

func isStageVar(k string) bool { return k == envStage || k == envDeps }

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// initProcess is PID 1 of the namespace: network setup, then the test
// process, reaping orphans until it exits.
func initProcess() int {
	if os.Getpid() != 1 {
		fatalf("init stage is not PID 1 (pid %d): %s must not be set by hand", os.Getpid(), envStage)
	}
	if err := setupNamespace(); err != nil {
		fatalf("setting up the namespace: %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		fatalf("%v", err)
	}
	env := childEnv(func(k string) bool { return k == envStage }, map[string]string{envStage: stageTest})
	child, err := os.StartProcess(exe, os.Args, &os.ProcAttr{
		Env:   env,
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
	})
	if err != nil {
		fatalf("starting the test process: %v", err)
	}
	// PID 1 only receives signals it handles; pass them on.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT, syscall.SIGHUP)
	go func() {
		for s := range sigs {
			child.Signal(s)
		}
	}()
	code := -1
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil { // ECHILD: nothing left
			break
		}
		if pid != child.Pid {
			continue // an orphan (e.g. an agent's job process)
		}
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			logf("test process killed by %v", ws.Signal())
			code = 128 + int(ws.Signal())
		}
		// Kill what the tests left behind, then keep reaping until ECHILD
		// so that their CPU time is accounted to us.
		syscall.Kill(-1, syscall.SIGKILL)
	}
	if code < 0 {
		logf("test process vanished")
		return 1
	}
	return code
}

func testProcess(m *testing.M) int {
	if os.Getppid() != 1 {
		fatalf("test stage is not a child of the namespace's init (parent %d): %s must not be set by hand", os.Getppid(), envStage)
	}
	var d Deps
	if err := json.Unmarshal([]byte(os.Getenv(envDeps)), &d); err != nil {
		fatalf("%s: %v", envDeps, err)
	}
	deps = &d
	// Children (servers, agents) must not think they are stages.
	os.Unsetenv(envStage)
	os.Unsetenv(envDeps)
	return m.Run()
}
