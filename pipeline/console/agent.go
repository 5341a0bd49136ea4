package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicetui/voicetui/pipeline/safetext"
)

// MinNode is the oldest Node.js major version agents-js's console mode
// runs on (1.9.0 needs 20).
const MinNode = 20

// Command is the agent's command line as given: a lone .js/.mjs/.cjs file
// is run with node.
func Command(args []string) []string {
	if len(args) == 1 {
		switch strings.ToLower(filepath.Ext(args[0])) {
		case ".js", ".mjs", ".cjs":
			return []string{"node", args[0]}
		}
	}
	return args
}

// Check says in one line what stops the agent's command from starting,
// before anything runs: the program missing, node too old, the agent file
// missing.
func Check(argv []string, dir string) error {
	if len(argv) == 0 {
		return errors.New("console: which agent? voicetui console -- node agent.mjs (an agents-js file; see docs/console.md)")
	}
	prog, err := exec.LookPath(argv[0])
	if err != nil {
		if filepath.Base(argv[0]) == "node" {
			return fmt.Errorf("console: node is not installed (or not on PATH): install Node.js %d or newer", MinNode)
		}
		return fmt.Errorf("console: cannot run %q: %v", argv[0], err)
	}
	if filepath.Base(prog) == "node" {
		out, err := exec.Command(prog, "--version").Output()
		v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
		major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
		if err != nil || major < MinNode {
			return fmt.Errorf("console: node %s is too old: agents-js's console mode needs Node.js %d or newer", safetext.Sanitize(v, 40), MinNode)
		}
	}
	for _, a := range argv[1:] {
		switch strings.ToLower(filepath.Ext(a)) {
		case ".js", ".mjs", ".cjs", ".ts":
			p := a
			if !filepath.IsAbs(p) && dir != "" {
				p = filepath.Join(dir, p)
			}
			if _, err := os.Stat(p); err != nil {
				return fmt.Errorf("console: the agent file %s is not there (%v)", a, errors.Unwrap(err))
			}
		}
	}
	return nil
}

// process is the agent, started in console mode; its output goes to the
// log, its last lines are kept for the hints.
type process struct {
	cmd    *exec.Cmd
	tail   *tail
	exited chan struct{} // closed when it has exited; err is then set
	err    error
}

// start runs argv with `console --connect-addr addr` appended, in a
// process group of its own (stopped as a whole), killed if voicetui dies
// (an agent left behind keeps its inference sockets open).
func start(argv []string, addr, dir string, env []string, log io.Writer) (*process, error) {
	args := append(append([]string(nil), argv[1:]...), "console", "--connect-addr", addr)
	cmd := exec.Command(argv[0], args...)
	cmd.Dir, cmd.Env = dir, env
	p := &process{cmd: cmd, tail: &tail{}, exited: make(chan struct{})}
	w := io.Writer(p.tail)
	if log != nil {
		w = io.MultiWriter(log, p.tail)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// Its children inherit the output pipe (agents-js forks an inference
	// process that lives 15 s after it): the exit must not wait for them.
	cmd.WaitDelay = 500 * time.Millisecond
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("console: cannot start the agent (%s): %w", argv[0], err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stopWait is how long the agent has to close after SIGINT before its
// group is killed: agents-js closes the socket within 0.5 s, but its
// process lives on for 10 s and more.
const stopWait = 1500 * time.Millisecond

// stop ends the agent: SIGINT (its session closes), then the group
// killed (its children too, also when it has exited itself).
func (p *process) stop() {
	pid := p.cmd.Process.Pid
	select {
	case <-p.exited:
	default:
		syscall.Kill(-pid, syscall.SIGINT)
		select {
		case <-p.exited:
		case <-time.After(stopWait):
		}
	}
	syscall.Kill(-pid, syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
	}
}

// exitText says how the agent ended: "exited with status 1", "was killed
// (signal: killed)".
func (p *process) exitText() string {
	var ee *exec.ExitError
	switch {
	case p.err == nil, errors.Is(p.err, exec.ErrWaitDelay):
		return "exited"
	case errors.As(p.err, &ee) && ee.ExitCode() >= 0:
		return fmt.Sprintf("exited with status %d", ee.ExitCode())
	}
	return "was killed (" + p.err.Error() + ")"
}

// diagnose reads the agent's last lines for the errors a user will hit
// and says what to do; "" when none is known.
func (p *process) diagnose(dir string) string {
	last := p.tail.String()
	switch {
	case strings.Contains(last, "ERR_MODULE_NOT_FOUND") && strings.Contains(last, "@livekit/agents"):
		where := dir
		if where == "" {
			where = "the agent's directory"
		}
		return "@livekit/agents is not installed where the agent runs: npm install @livekit/agents@1.9.0 @livekit/agents-plugin-silero@1.9.0 in " + where
	case strings.Contains(last, "unknown command 'console'"), strings.Contains(last, "unknown option '--connect-addr'"):
		return "this agent's @livekit/agents has no console mode: npm install @livekit/agents@1.9.0 (or newer)"
	case strings.Contains(last, "ERR_UNHANDLED_REJECTION"):
		return "the agent crashed on an unhandled promise rejection (agents-js 1.9.0's console mode raises one when a reply being synthesized is interrupted): add process.on('unhandledRejection', ...) to the agent, as agents-js's worker processes do"
	case strings.Contains(last, "EADDRINUSE"), strings.Contains(last, "ECONNREFUSED"):
		return "the agent could not reach voicetui's console port on 127.0.0.1: is a firewall or another program in the way?"
	}
	return ""
}

// lastLines is the agent's last n telling lines of output, each made fit
// to show by clean (escapes and secrets removed), for an error message: blank lines, braces, stack frames and
// Node's version banner say nothing.
func (p *process) lastLines(n int, clean func(string) string) string {
	var keep []string
	lines := strings.Split(p.tail.String(), "\n")
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		l := clean(lines[i])
		switch {
		case l == "", l == "}", l == "^", strings.HasPrefix(l, "at "), strings.HasPrefix(l, "Node.js v"):
			continue
		}
		keep = append([]string{l}, keep...)
	}
	return strings.Join(keep, " | ")
}

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(bytes.ToValidUTF8(t.buf, nil))
}

// waitExit waits for the agent to exit or ctx to end.
func (p *process) waitExit(ctx context.Context) bool {
	select {
	case <-p.exited:
		return true
	case <-ctx.Done():
		return false
	}
}
