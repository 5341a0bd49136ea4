package roomtest

import (
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Agent is an agents-js worker started by StartAgent.
type Agent struct {
	p            *proc
	registeredIn time.Duration
}

// StartAgent starts the agent (`node agent.mjs start`, see agent/agent.mjs)
// against s and waits until its worker has registered with the server. A
// worker without an agent name is dispatched to every new room, so the
// agent joins any room a test creates on s.
//
// env must set LIVEKIT_INFERENCE_URL (InferenceEnv does, from a Gateway);
// it may set AGENT_GREETING (off by default), AGENT_INSTRUCTIONS, LOG_LEVEL
// or anything else node should see. LIVEKIT_URL, LIVEKIT_API_KEY and
// LIVEKIT_API_SECRET are s's; other LIVEKIT_* and AGENT_* variables of the
// test's environment are not passed on.
//
// The agent is killed at the end of t; its log (ArtifactDir/agent.log) is
// printed if t fails.
func StartAgent(t testing.TB, s *Server, env map[string]string) *Agent {
	t.Helper()
	if !InNamespace() {
		t.Fatal(errNotInNamespace)
	}
	if env["LIVEKIT_INFERENCE_URL"] == "" {
		t.Fatal("roomtest.StartAgent: env has no LIVEKIT_INFERENCE_URL: the agent would dial the cloud gateway; use InferenceEnv(gateway)")
	}
	set := map[string]string{
		"LIVEKIT_URL":        s.URL(),
		"LIVEKIT_API_KEY":    APIKey,
		"LIVEKIT_API_SECRET": APISecret,
		"LOG_LEVEL":          "info",
		"AGENT_HEALTH_PORT":  strconv.Itoa(FreePort(t, "127.0.0.1")),
	}
	for k, v := range env {
		set[k] = v
	}
	drop := func(k string) bool { return isLiveKitVar(k) || strings.HasPrefix(k, "AGENT_") }
	start := time.Now()
	a := &Agent{p: startProc(t, "agent", deps.AgentDir, childEnv(drop, set),
		deps.Node, filepath.Join(deps.AgentDir, "agent.mjs"), "start")}
	if err := a.p.waitLog("registered worker", 60*time.Second); err != nil {
		t.Fatal(err)
	}
	a.registeredIn = time.Since(start)
	return a
}

// Kill SIGKILLs the agent's whole process group (the worker and its job
// processes) and waits for the worker to exit. Unlike SIGTERM, which
// drains for about 20 s, it is instant; the server notices the agent's
// participant leaving only after its own timeouts (about 20 s).
func (a *Agent) Kill() { a.p.kill() }

// KillWorker SIGKILLs only the worker process; its job processes notice
// and leave their rooms by themselves (about 15 s). What is left of the
// group is killed at the end of the test.
func (a *Agent) KillWorker() {
	syscall.Kill(a.p.cmd.Process.Pid, syscall.SIGKILL)
	<-a.p.done
}

// WaitLog waits until the agent's log contains s, e.g. `"prewarmed"` (its
// idle job process is ready) or `"type":"job"` (it took a job).
func (a *Agent) WaitLog(t testing.TB, s string, timeout time.Duration) {
	t.Helper()
	if err := a.p.waitLog(s, timeout); err != nil {
		t.Fatal(err)
	}
}

// PID is the worker's process ID (also its process group).
func (a *Agent) PID() int { return a.p.cmd.Process.Pid }

// LogPath is the file that collects the agent's output.
func (a *Agent) LogPath() string { return a.p.log }

// RegistrationTime is how long the worker took to register.
func (a *Agent) RegistrationTime() time.Duration { return a.registeredIn }
