package room

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
	"github.com/voicetui/voicetui/pipeline/room/roomtest"
)

// The journey of cmd/voicetui's TestJourney in room mode: the binary in a
// real terminal (tmux) on the headless devices, talking to a real
// agents-js agent through a real livekit-server, the agent's LLM a paced
// one (token by token, 20-60 ms) behind the embedded gateway, whose rules
// then run the LLM's credits out mid-session.
func TestRoomJourney(t *testing.T) {
	pulse, err := pulsetest.Start()
	if err != nil {
		t.Fatal("this test needs the headless audio setup: ", err)
	}
	t.Cleanup(func() { pulse.Stop() })
	bin := voicetuiBinary(t)

	llm := &pipelinetest.PacedLLM{}
	ln, err := net.Listen("tcp", roomtest.ServerIP+":0")
	if err != nil {
		t.Fatal(err)
	}
	paced := httptest.NewUnstartedServer(llm.Handler(t))
	paced.Listener.Close()
	paced.Listener = ln
	paced.Start()
	t.Cleanup(paced.Close)

	spoken := []string{
		"What time is it?", "Tell me about dragons.", "How is the weather?", "Where do penguins live?",
		"Can you count to three?", "What is your name?", "Tell me a long story please.", "Stop, that is enough.",
		"What day is it today?", "Thank you very much.", "What about tomorrow?",
	}
	var lines []string
	for _, s := range spoken {
		lines = append(lines, strings.ToLower(strings.Trim(s, "?.!")))
	}
	w := newWorld(t, localgw.Options{STTScript: lines,
		Upstream: &localgw.Upstream{URL: paced.URL + "/v1", Kind: localgw.UpstreamOpenAI,
			AllowInsecureHTTP: true}}, true) // the test's own namespace, no credentials

	dir := t.TempDir()
	rec, logPath := filepath.Join(dir, "rec"), filepath.Join(dir, "log.txt")
	s := tmuxtest.Start(t, bin, 100, 30, []string{"LIVEKIT_API_KEY=" + roomtest.APIKey, "LIVEKIT_API_SECRET=" + roomtest.APISecret},
		"room", "--url", w.srv.URL(), "--room", "journey", "--record", rec, "--log-file", logPath, "--max-unrecoverable-errors", "0")
	s.WaitScreen(40*time.Second, "agent listening")

	say := func(sentence string) {
		t.Helper()
		speech, _, err := audio.ReadWAVFile(speechtest.WAV(t, 300*time.Millisecond, sentence, 300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := pulse.FeedMic(t.Context(), speech); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(n int) string { return fmt.Sprintf("The third one ends answer %d.", n) }
	turn := 0
	// Ten spoken turns; the eighth barges in on the seventh's reply.
	for i := range 10 {
		if i == 7 {
			continue // said over the seventh reply, below
		}
		turn++
		say(spoken[i])
		heard := lines[i]
		if i == 6 {
			s.WaitScreen(30*time.Second, "agent speaking")
			time.Sleep(time.Second)
			say(spoken[7])
			s.WaitText(30*time.Second, "[interrupted]")
			turn++
			heard = lines[7]
		}
		s.WaitText(40*time.Second, "you: "+heard, answer(turn))
		s.WaitScreen(30*time.Second, "agent listening")
	}
	if turn != 10 || llm.Requests() != 10 {
		t.Fatalf("%d spoken turns, %d requests:\n%s", turn, llm.Requests(), s.Screen())
	}
	// The seventh reply was cut: its last sentence never came on screen.
	if strings.Contains(tmuxtest.Squeeze(s.Screen()), tmuxtest.Squeeze(answer(7))) {
		t.Fatalf("the agent finished the reply it was interrupted in:\n%s", s.Screen())
	}

	// Five typed turns (lk.chat), the prompt open between them.
	s.Keys("C-t")
	s.WaitScreen(5*time.Second, "say:")
	typed := []string{"quick question about x", "mute nothing, just reply", "restart from 0 or not?", "read me a rhyme", "quit? no, one more"}
	for _, text := range typed {
		turn++
		s.Type(text)
		s.Keys("Enter")
		s.WaitText(40*time.Second, "you: "+text, answer(turn))
		s.WaitScreen(30*time.Second, "agent listening")
	}
	if scr := s.Screen(); strings.Contains(scr, "MIC MUTED") || !strings.Contains(scr, "say:") {
		t.Fatalf("typing turned into commands, or the prompt closed:\n%s", scr)
	}
	s.Keys("Escape")
	time.Sleep(200 * time.Millisecond) // esc and a letter at once are alt+letter

	// Muted, the agent hears silence: no turn.
	s.Keys("m")
	s.WaitScreen(5*time.Second, "MIC MUTED")
	say("Can you hear me now?")
	time.Sleep(2 * time.Second)
	if n := llm.Requests(); n != turn {
		t.Fatalf("a muted microphone was heard: %d requests after %d turns", n, turn)
	}
	s.Keys("m")
	s.WaitScreen(5*time.Second, "mic on")

	s.Resize(60, 20)
	s.WaitScreen(5*time.Second, "? help")
	for _, row := range s.Rows() {
		if w := ansi.StringWidth(row); w > 60 {
			t.Fatalf("a row of %d columns at 60:\n%s", w, strings.Join(s.Rows(), "\n"))
		}
	}
	if rows := len(s.Rows()); rows > 20 {
		t.Fatalf("%d rows at 20", rows)
	}
	s.Resize(100, 30)
	s.WaitText(5*time.Second, answer(turn))

	// The agent's LLM credits run out: it retries, gives up, and goes back
	// to listening in silence; voicetui says so, plays the clip, closes.
	q, _ := localgw.ParseQuota("llm:credits")
	w.gw.Policy().AddQuota(q)
	clip, err := pulse.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clip.Stop() })
	say(spoken[10])
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

	// The record: every turn, the clip and its replay, the close.
	finals, replies, interrupted, replays := 0, 0, 0, 0
	var closed map[string]any
	var e2e []string
	for _, line := range strings.Split(strings.TrimSpace(readText(t, filepath.Join(rec, "events.jsonl"))), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("events.jsonl: %q: %v", line, err)
		}
		switch e["type"] {
		case "transcript":
			if e["final"] == true {
				finals++
			}
		case "agent_text":
			if e["final"] == true {
				replies++
				if e["interrupted"] == true {
					interrupted++
				}
			}
		case "metrics":
			e2e = append(e2e, fmt.Sprintf("%.0f", e["e2e_ms"]))
		case "fallback":
			if e["reason"] == "replay" && e["ok"] == true && closed != nil {
				replays++
			}
		case "close":
			closed = e
		}
	}
	if finals < 11 || replies < 15 || interrupted < 1 || replays != 1 || closed == nil || closed["reason"] != "error" {
		t.Fatalf("events: %d final transcripts (want the 10 spoken turns and the refused one), %d replies (%d interrupted), %d replays after the close, close %v",
			finals, replies, interrupted, replays, closed)
	}
	frames := framesLine(readText(t, logPath))
	if !strings.HasPrefix(frames, "msg=") {
		t.Fatal(frames)
	}
	t.Logf("room journey: %d turns (10 spoken, 5 typed); e2e per turn (ms): %s; %s", turn, strings.Join(e2e, " "), frames)
}

func readText(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// framesLine is the interface's frame figures from the log.
func framesLine(log string) string {
	for _, l := range strings.Split(log, "\n") {
		if i := strings.Index(l, `msg="interface frames"`); i >= 0 {
			return l[i:]
		}
	}
	return "no interface frames line in the log"
}
