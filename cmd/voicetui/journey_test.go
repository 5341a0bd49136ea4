package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

// The journey: a new user's session with the real binary in the real
// interface (tmux) on the headless sound server, against a model that
// streams like a real one (pipelinetest.PacedLLM: three-sentence replies,
// token by token, 20-60 ms a token) behind the embedded gateway
// (--upstream), so its quota keys still work. Ten spoken turns (one of
// them barges in on a reply), five typed ones with the prompt left open
// between them (their words hold every command letter), mute and unmute,
// a resize to 60x20 and back, LLM credits exhausted mid-session (the
// status pane, the clip, the session closed, the interface still up), f
// to hear the clip again, q. Asserted on the screen and on --record's
// files; its figures are logged (go test -v).
func TestJourney(t *testing.T) {
	llm := &pipelinetest.PacedLLM{}
	srv := httptest.NewServer(llm.Handler(t))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	logPath := filepath.Join(dir, "log.txt")
	spoken := []string{
		"What time is it?", "Tell me about dragons.", "How is the weather?", "Where do penguins live?",
		"Can you count to three?", "What is your name?", "Tell me a long story please.", "Stop, that is enough.",
		"What day is it today?", "Thank you very much.",
	}
	script := filepath.Join(dir, "script.txt")
	var lines []string
	for _, s := range spoken {
		lines = append(lines, strings.ToLower(strings.Trim(s, "?.!")))
	}
	os.WriteFile(script, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	s := startTmux(t, 100, 30, "--stt-script", script, "--upstream", srv.URL+"/v1", "--upstream-kind", "openai",
		"--record", rec, "--log-file", logPath)
	s.waitScreen(20*time.Second, "agent listening", "AEC on", "all good")

	answer := func(n int) string { return fmt.Sprintf("The third one ends answer %d.", n) }
	say := func(sentence string) {
		t.Helper()
		speech, _, err := audio.ReadWAVFile(spokenWAV(t, 300*time.Millisecond, sentence, 300*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		if err := server.FeedMic(t.Context(), speech); err != nil {
			t.Fatal(err)
		}
	}
	turn := 0
	// Ten spoken turns; the eighth barges in on the seventh's reply.
	for i, sentence := range spoken {
		if i == 7 {
			continue // said over the seventh reply, below
		}
		turn++
		say(sentence)
		if i == 6 { // the agent is speaking its reply: talk over it
			s.waitScreen(20*time.Second, "agent speaking")
			time.Sleep(500 * time.Millisecond)
			say(spoken[7])
			s.WaitText(20*time.Second, "[interrupted]")
			turn++
		}
		heard := lines[i]
		if i == 6 {
			heard = lines[7] // the reply to the interruption
		}
		s.WaitText(30*time.Second, "you: "+heard, answer(turn))
		s.waitScreen(20*time.Second, "agent listening")
	}
	if turn != 10 || llm.Requests() != 10 {
		t.Fatalf("%d spoken turns, %d requests", turn, llm.Requests())
	}

	// Five typed turns, the prompt open between them: every letter is
	// text, none a command.
	s.keys("C-t")
	s.waitScreen(5*time.Second, "say:")
	typed := []string{"quick question about x", "mute nothing, just reply", "restart from 0 or not?", "read me a rhyme", "quit? no, one more"}
	for _, text := range typed {
		turn++
		s.Type(text)
		s.keys("Enter")
		s.WaitText(30*time.Second, "you: "+text, answer(turn))
		s.waitScreen(20*time.Second, "agent listening")
	}
	scr := s.screen()
	if strings.Contains(scr, "MIC MUTED") || strings.Contains(scr, "embedded gateway: ") || !strings.Contains(scr, "say:") {
		t.Fatalf("typing turned into commands, or the prompt closed:\n%s", scr)
	}
	s.keys("Escape")
	time.Sleep(200 * time.Millisecond) // esc and a letter at once are alt+letter

	// Mute: speech is not heard; unmute: it is again (no script line is
	// used while muted: the gateway hears silence).
	s.keys("m")
	s.waitScreen(5*time.Second, "MIC MUTED")
	say("Can you hear me now?")
	time.Sleep(time.Second)
	if n := llm.Requests(); n != turn {
		t.Fatalf("a muted microphone was heard: %d requests after %d turns", n, turn)
	}
	s.keys("m")
	s.waitScreen(5*time.Second, "mic on")

	// A narrow terminal and back: nothing wider than the terminal, the
	// status pane and the keys still there.
	s.Resize(60, 20)
	s.waitScreen(5*time.Second, "all good", "? help")
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

	// Credits run out mid-session.
	s.keys("x")
	s.waitScreen(5*time.Second, "credits exhausted for llm")
	clip := speakIntoMic(t, t.Context(), "What about tomorrow?")
	s.WaitText(30*time.Second, "LLM error", "TERMINAL", "MaxGatewayCredits", "fallback clip quota played", "session closed (error)")
	if _, ok := clip.FirstSound(); !ok {
		t.Fatal("the clip never reached the speaker")
	}
	// The interface stays up; f plays the clip again.
	time.Sleep(500 * time.Millisecond)
	s.waitScreen(time.Second, "session closed (error)")
	s.keys("f")
	time.Sleep(5 * time.Second)
	s.keys("q")
	s.waitScreen(15*time.Second, "EXITED 3") // a session closed by credits: exit 3

	// The record: every turn, the interruption, the clip and its replay,
	// the close.
	events := readEvents(t, filepath.Join(rec, "events.jsonl"))
	finals, replies, interrupted, replays := 0, 0, 0, 0
	var e2e []string
	var closed map[string]any
	for _, e := range events {
		switch e.typ() {
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
			// f after the close: the replay comes after it.
			if e["reason"] == "replay" && e["ok"] == true && closed != nil {
				replays++
			}
		case "close":
			closed = e
		}
	}
	if finals != 16 || interrupted != 1 || replies < 15 || replays != 1 || closed == nil || closed["reason"] != "error" {
		t.Fatalf("events: %d final transcripts (want 15 turns and the refused one), %d replies (%d interrupted), %d replays after the close, close %v",
			finals, replies, interrupted, replays, closed)
	}
	frames := regexp.MustCompile(`msg="interface frames" frames=(\d+) mean_ms=(\S+) slowest_ms=(\S+) over_16ms=(\d+)`).FindStringSubmatch(readFile(t, logPath))
	if frames == nil {
		t.Fatal("the log has no interface frames line")
	}
	t.Logf("journey: %d turns (10 spoken, 5 typed); e2e per turn (ms): %s; %s frames drawn, mean %s ms, slowest %s ms, %s over 16 ms",
		turn, strings.Join(e2e, " "), frames[1], frames[2], frames[3], frames[4])
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readEvents reads an events.jsonl.
func readEvents(t *testing.T, path string) []event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		t.Fatalf("%s is empty", path)
	}
	return out
}
