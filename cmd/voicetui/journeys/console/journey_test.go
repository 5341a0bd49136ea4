// Package console is the interface's journey in console mode
// (journeys.Walk, then the credits with x): the real binary in tmux on
// the headless sound server, running a real agents-js 1.9.0 agent in its
// console mode, whose inference is the binary's own embedded gateway in
// front of a paced LLM. Loopback only.
package console

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/cmd/voicetui/journeys"
	"github.com/voicetui/voicetui/pipeline/console/consoletest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
)

var pulse *pulsetest.Server

func TestMain(m *testing.M) { os.Exit(pulsetest.RunTests(m, &pulse)) }

// No credentials from the environment reach the binary or the agent.
var noCredentials = []string{"LIVEKIT_API_KEY=", "LIVEKIT_API_SECRET=", "LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=",
	"LIVEKIT_INFERENCE_URL=", "OPENAI_API_KEY=", "OPENAI_BASE_URL=", "NO_COLOR=1"}

// The journey with the developer's agent, then x: the gateway refuses the
// agent's next LLM request, and the clip plays on that first refusal
// although the agent only retries; the status pane has the gateway's
// hint and category; q exits 3.
func TestConsoleJourney(t *testing.T) {
	bin := pipelinetest.Binary(t)
	_, agent := consoletest.Agent(t)
	llm := &pipelinetest.PacedLLM{Reply: journeys.Reply}
	srv := httptest.NewServer(llm.Handler(t))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	rec, logPath, script := filepath.Join(dir, "rec"), filepath.Join(dir, "log.txt"), filepath.Join(dir, "script.txt")
	if err := os.WriteFile(script, []byte(strings.Join(journeys.Script(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(string(b), "\n")
			t.Logf("the agent's log, last lines:\n%s", strings.Join(lines[max(0, len(lines)-80):], "\n"))
		}
	})
	s := tmuxtest.Start(t, bin, 100, 30, noCredentials, "console", "--stt-script", script, "--upstream", srv.URL+"/v1", "--upstream-kind", "openai",
		"--record", rec, "--log-file", logPath, "--", "node", agent)
	s.WaitScreen(40*time.Second, "agent listening", "AEC on", "console agent")

	turn := journeys.Walk(t, s, pulse, llm, false)

	s.Keys("x")
	s.WaitScreen(5*time.Second, "credits exhausted for llm")
	clip, err := pulse.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clip.Stop() })
	journeys.Say(t, pulse, journeys.Spoken[10])
	s.WaitText(30*time.Second, "LLM error", "TERMINAL", "MaxGatewayCredits", "fallback clip quota played", "session closed (error)")
	if _, ok := clip.FirstSound(); !ok {
		t.Fatal("the clip never reached the speaker")
	}
	time.Sleep(500 * time.Millisecond)
	s.WaitScreen(time.Second, "session closed (error)") // the interface stays up
	s.Keys("f")
	time.Sleep(5 * time.Second)
	s.Keys("q")
	s.WaitScreen(15*time.Second, "EXITED 3")

	r := journeys.Tally(t, filepath.Join(rec, "events.jsonl"))
	if r.Finals < 16 || r.Interrupted != 1 || r.Replies < 15 || r.ReplaysAfterClose != 1 || r.Close == nil || r.Close["reason"] != "error" {
		t.Fatalf("events: %d final transcripts (want 15 turns and the refused one), %d replies (%d interrupted), %d replays after the close, close %v",
			r.Finals, r.Replies, r.Interrupted, r.ReplaysAfterClose, r.Close)
	}
	t.Logf("console journey: %d turns (10 spoken, 5 typed); e2e per turn (ms): %s; %s", turn, strings.Join(r.E2E, " "), journeys.Frames(t, logPath))
}
