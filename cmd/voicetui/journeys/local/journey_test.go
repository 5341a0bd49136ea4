// Package local is the interface's journey on the embedded gateway
// (journeys.Walk, then the credits): the real binary in tmux on the
// headless sound server, the gateway in front of a paced LLM.
package local

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/cmd/voicetui/journeys"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
)

var pulse *pulsetest.Server

func TestMain(m *testing.M) { os.Exit(pulsetest.RunTests(m, &pulse)) }

// No credentials from the environment reach the binary: it runs on the
// embedded gateway.
var noCredentials = []string{"LIVEKIT_API_KEY=", "LIVEKIT_API_SECRET=", "LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=",
	"LIVEKIT_INFERENCE_URL=", "OPENAI_API_KEY=", "OPENAI_BASE_URL="}

// The journey, then the LLM's credits run out mid-session (x): the
// status pane, the clip, the session closed, the interface still up; f
// plays the clip again (once when pressed twice); q exits 3 (a session a
// terminal provider error closed).
func TestJourney(t *testing.T) {
	bin := pipelinetest.Binary(t)
	llm := &pipelinetest.PacedLLM{Reply: journeys.Reply}
	srv := httptest.NewServer(llm.Handler(t))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	rec, logPath, script := filepath.Join(dir, "rec"), filepath.Join(dir, "log.txt"), filepath.Join(dir, "script.txt")
	if err := os.WriteFile(script, []byte(strings.Join(journeys.Script(), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := tmuxtest.Start(t, bin, 100, 30, noCredentials, "--stt-script", script, "--upstream", srv.URL+"/v1", "--upstream-kind", "openai",
		"--record", rec, "--log-file", logPath)
	s.WaitScreen(20*time.Second, "agent listening", "AEC on", "all good")

	turn := journeys.Walk(t, s, pulse, llm, true)

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
	replay, err := pulse.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { replay.Stop() })
	s.Keys("f")
	s.Keys("f") // pressed again while it plays: one clip, not two at once
	time.Sleep(6 * time.Second)
	heard, _ := replay.Stop()
	if first, last := pulsetest.LoudSpan(heard, 2000); first < 0 || last-first > 5*pulsetest.SpeakerRate {
		t.Fatalf("f pressed twice: sound from %d to %d at %d Hz, want the clip once (4 s)", first, last, pulsetest.SpeakerRate)
	}
	s.Keys("q")
	s.WaitScreen(15*time.Second, "EXITED 3")

	r := journeys.Tally(t, filepath.Join(rec, "events.jsonl"))
	if r.Finals != 16 || r.Interrupted != 1 || r.Replies < 15 || r.ReplaysAfterClose != 1 || r.Close == nil || r.Close["reason"] != "error" {
		t.Fatalf("events: %d final transcripts (want 15 turns and the refused one), %d replies (%d interrupted), %d replays after the close, close %v",
			r.Finals, r.Replies, r.Interrupted, r.ReplaysAfterClose, r.Close)
	}
	t.Logf("journey: %d turns (10 spoken, 5 typed); e2e per turn (ms): %s; %s", turn, strings.Join(r.E2E, " "), journeys.Frames(t, logPath))
}
