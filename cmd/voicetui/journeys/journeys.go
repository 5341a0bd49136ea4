// Package journeys holds what the interface's journeys share: a new
// user's session with the real binary in a real terminal (tmux) on the
// headless sound server, against a model that streams like a real one
// (pipelinetest.PacedLLM). The journeys themselves are the tests of
// journeys/local (the embedded gateway) and journeys/room (a real
// livekit-server and agents-js agent). They are packages of their own so
// that no real-time test package runs for long: `go test ./...` waits
// for the machine-wide real-time lock within cmd/go's 11 minutes.
package journeys

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
)

// Spoken are the sentences said into the microphone, in order: ten turns
// (the eighth said over the seventh's reply), then one more for the
// refused turn.
var Spoken = []string{
	"What time is it?", "Tell me about dragons.", "How is the weather?", "Where do penguins live?",
	"Can you count to three?", "What is your name?", "Tell me a long story please.", "Stop, that is enough.",
	"What day is it today?", "Thank you very much.", "What about tomorrow?",
}

// Typed are the typed turns: their words hold every command letter.
var Typed = []string{"quick question about x", "mute nothing, just reply", "restart from 0 or not?", "read me a rhyme", "quit? no, one more"}

// Heard is what the STT script returns for Spoken[i].
func Heard(i int) string { return strings.ToLower(strings.Trim(Spoken[i], "?.!")) }

// Script is Heard of every spoken sentence.
func Script() []string {
	var lines []string
	for i := range Spoken {
		lines = append(lines, Heard(i))
	}
	return lines
}

// Ends is the last sentence of the paced LLM's n-th answer.
func Ends(n int) string { return fmt.Sprintf("The third one ends answer %d.", n) }

// Story is the request the user talks over (the seventh).
const Story = 7

// Reply is the paced LLM's answer in a journey: pipelinetest.Answer, but
// the story is long (some 150 tokens, 6 s at the LLM's pace), so that the
// user's barge-in lands while it still streams, however slow the machine.
func Reply(n int, heard string) string {
	if n != Story {
		return pipelinetest.Answer(n, heard)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Answer %d, about %s.", n, pipelinetest.Words(heard, 4))
	for i := 1; i <= 14; i++ {
		fmt.Fprintf(&b, " Once more the dragon flew over the hills, part %d.", i)
	}
	b.WriteString(" " + Ends(n))
	return b.String()
}

// Say speaks sentence into the virtual microphone, in real time.
func Say(t testing.TB, pulse *pulsetest.Server, sentence string) {
	t.Helper()
	speech, _, err := audio.ReadWAVFile(speechtest.WAV(t, 300*time.Millisecond, sentence, 300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := pulse.FeedMic(t.Context(), speech); err != nil {
		t.Fatal(err)
	}
}

// Event is one line of events.jsonl.
type Event map[string]any

// Type is the event's type.
func (e Event) Type() string { s, _ := e["type"].(string); return s }

// Events reads an events.jsonl.
func Events(t testing.TB, path string) []Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Event
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Event
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

// Record counts what a journey's events.jsonl holds.
type Record struct {
	Finals, Replies, Interrupted int
	ReplaysAfterClose            int // f after the close: "replay" fallbacks that played
	Close                        Event
	E2E                          []string // ms, per answered turn
}

// Tally reads path into a Record.
func Tally(t testing.TB, path string) Record {
	t.Helper()
	var r Record
	for _, e := range Events(t, path) {
		switch e.Type() {
		case "transcript":
			if e["final"] == true {
				r.Finals++
			}
		case "agent_text":
			if e["final"] == true {
				r.Replies++
				if e["interrupted"] == true {
					r.Interrupted++
				}
			}
		case "metrics":
			r.E2E = append(r.E2E, fmt.Sprintf("%.0f", e["e2e_ms"]))
		case "fallback":
			if e["reason"] == "replay" && e["ok"] == true && r.Close != nil {
				r.ReplaysAfterClose++
			}
		case "close":
			r.Close = e
		}
	}
	return r
}

var framesRE = regexp.MustCompile(`msg="interface frames" frames=(\d+) mean_ms=(\S+) slowest_ms=(\S+) over_16ms=(\d+)`)

// Frames is the interface's frame figures from the log (--log-file).
func Frames(t testing.TB, logPath string) string {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	m := framesRE.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("%s has no interface frames line", logPath)
	}
	return fmt.Sprintf("%s frames drawn, mean %s ms, slowest %s ms, %s over 16 ms", m[1], m[2], m[3], m[4])
}

// Walk is the journey up to the failure, in a 100x30 terminal whose
// interface already shows "agent listening": ten spoken turns (the eighth
// barges in on the seventh's reply, which ends "[interrupted]"), five
// typed ones with the prompt left open between them (every letter is
// text, none a command), mute (the agent hears nothing) and unmute, a
// resize to 60x20 (nothing wider or taller than the terminal) and back.
// It returns the number of turns, the prompt closed.
//
// The LLM answers with Reply.
//
// cut says whether the interrupted reply shows only what was said of it
// (local and room mode) or all the agent wrote, marked interrupted
// (console mode: agents-js's chat item holds the whole reply there, with
// no transcript of what was played).
func Walk(t testing.TB, s *tmuxtest.Session, pulse *pulsetest.Server, llm *pipelinetest.PacedLLM, cut bool) int {
	t.Helper()
	turn := 0
	for i := range 10 {
		if i == 7 {
			continue // said over the seventh reply, below
		}
		turn++
		Say(t, pulse, Spoken[i])
		heard := Heard(i)
		if i == Story-1 { // the agent is speaking its reply: talk over it
			s.WaitScreen(30*time.Second, "agent speaking")
			time.Sleep(time.Second)
			Say(t, pulse, Spoken[7])
			s.WaitText(30*time.Second, "[interrupted]")
			turn++
			heard = Heard(7) // answered in turn 8
		}
		s.WaitText(40*time.Second, "you: "+heard, Ends(turn))
		s.WaitScreen(30*time.Second, "agent listening")
	}
	if turn != 10 || llm.Requests() != 10 {
		t.Fatalf("%d spoken turns, %d requests:\n%s", turn, llm.Requests(), s.Screen())
	}
	// The interrupted reply was cut: its last sentence never came.
	if cut && strings.Contains(tmuxtest.Squeeze(s.Screen()), tmuxtest.Squeeze(Ends(Story))) {
		t.Fatalf("the agent finished the reply it was interrupted in:\n%s", s.Screen())
	}

	s.Keys("C-t")
	s.WaitScreen(5*time.Second, "say:")
	for _, text := range Typed {
		turn++
		s.Type(text)
		s.Keys("Enter")
		s.WaitText(40*time.Second, "you: "+text, Ends(turn))
		s.WaitScreen(30*time.Second, "agent listening")
	}
	if scr := s.Screen(); strings.Contains(scr, "MIC MUTED") || strings.Contains(scr, "embedded gateway: ") || !strings.Contains(scr, "say:") {
		t.Fatalf("typing turned into commands, or the prompt closed:\n%s", scr)
	}
	s.Keys("Escape")
	time.Sleep(200 * time.Millisecond) // esc and a letter at once are alt+letter

	s.Keys("m")
	s.WaitScreen(5*time.Second, "MIC MUTED")
	Say(t, pulse, "Can you hear me now?")
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
	s.WaitText(5*time.Second, Ends(turn))
	return turn
}
