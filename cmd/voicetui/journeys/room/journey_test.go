// Package room is the interface's journey in room mode (journeys.Walk,
// then the agent's credits): the binary in tmux on a headless sound
// server of its own, talking to a real agents-js agent through a real
// livekit-server, all in the network namespace roomtest makes; the
// agent's inference is the embedded gateway in this process, in front of
// a paced LLM, and a quota rule added to it runs the LLM's credits out.
package room

import (
	"context"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/cmd/voicetui/journeys"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
	"github.com/voicetui/voicetui/pipeline/room/roomtest"
)

func TestMain(m *testing.M) { roomtest.Main(m) }

func TestRoomJourney(t *testing.T) {
	pulse, err := pulsetest.Start()
	if err != nil {
		t.Fatal("this test needs the headless audio setup: ", err)
	}
	t.Cleanup(func() { pulse.Stop() })
	bin := pipelinetest.Binary(t)

	llm := &pipelinetest.PacedLLM{Reply: journeys.Reply}
	ln, err := net.Listen("tcp", roomtest.ServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	paced := httptest.NewUnstartedServer(llm.Handler(t))
	paced.Listener.Close()
	paced.Listener = ln
	paced.Start()
	t.Cleanup(paced.Close)
	gw, err := localgw.New(localgw.Options{STTScript: journeys.Script(), TokenDelay: -1,
		Upstream: &localgw.Upstream{URL: paced.URL + "/v1", Kind: localgw.UpstreamOpenAI,
			AllowInsecureHTTP: true}}) // the test's own namespace, no credentials
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(roomtest.ServerIP + ":0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		gw.Close(ctx)
	})
	srv := roomtest.StartServer(t)
	roomtest.StartAgent(t, srv, roomtest.InferenceEnv(gw))

	dir := t.TempDir()
	rec, logPath := filepath.Join(dir, "rec"), filepath.Join(dir, "log.txt")
	s := tmuxtest.Start(t, bin, 100, 30, []string{"LIVEKIT_API_KEY=" + roomtest.APIKey, "LIVEKIT_API_SECRET=" + roomtest.APISecret},
		"room", "--url", srv.URL(), "--room", "journey", "--record", rec, "--log-file", logPath, "--max-unrecoverable-errors", "0")
	s.WaitScreen(40*time.Second, "agent listening")

	turn := journeys.Walk(t, s, pulse, llm, true)

	// The agent's LLM credits run out: it retries, gives up and goes back
	// to listening in silence; voicetui says so, plays the clip, closes.
	q, _ := localgw.ParseQuota("llm:credits")
	gw.Policy().AddQuota(q)
	clip, err := pulse.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clip.Stop() })
	journeys.Say(t, pulse, journeys.Spoken[10])
	s.WaitText(60*time.Second, "did not answer", "inference.LLM", "quota may be exhausted", "session closed (error)")
	if _, ok := clip.FirstSound(); !ok {
		t.Fatal("the clip never reached the speaker")
	}
	s.Keys("f")
	time.Sleep(5 * time.Second)
	s.Keys("q")
	// A session the agent's failure closed: exit 1, the reason on the
	// terminal once the interface is gone.
	s.WaitText(20*time.Second, "voicetui: agent: the agent did not answer; it reported errors in inference.LLM", "EXITED 1")

	r := journeys.Tally(t, filepath.Join(rec, "events.jsonl"))
	if r.Finals < 11 || r.Replies < 15 || r.Interrupted < 1 || r.ReplaysAfterClose != 1 || r.Close == nil || r.Close["reason"] != "error" {
		t.Fatalf("events: %d final transcripts (want the 10 spoken turns and the refused one), %d replies (%d interrupted), %d replays after the close, close %v",
			r.Finals, r.Replies, r.Interrupted, r.ReplaysAfterClose, r.Close)
	}
	t.Logf("room journey: %d turns (10 spoken, 5 typed); e2e per turn (ms): %s; %s", turn, strings.Join(r.E2E, " "), journeys.Frames(t, logPath))
}
