package ui

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

var (
	sequences = flag.Int("sequences", 0, "TestRandomSessions: how many random sessions (0: 2000, 200 under the race detector)")
	seedFlag  = flag.Uint64("seed", 0, "TestRandomSessions: the first seed (0: from the clock)")
)

// TestRandomSessions feeds random sessions (agent and user states,
// interim and final transcripts, replies streamed in pieces, barge-in,
// errors with and without quota, fallbacks, metrics, closes, resizes from
// 20 to 200 columns, meters, clock ticks, and keys in and out of the
// prompt) through the real Update and View, each message from another
// stack depth, and checks after every one:
//
//   - nothing panics;
//   - the frame is never taller or wider than the terminal, and the
//     status pane keeps to the rows it is given;
//   - a final reply is shown whole once the transcript has room for it;
//   - while the prompt is open a printable key is text and nothing else
//     (no command runs, nothing quits), and enter sends exactly what was
//     typed; gateway actions run in the order of their keys.
//
// A failure names its seed: `go test ./ui -run TestRandomSessions
// -sequences 1 -seed N` replays it.
func TestRandomSessions(t *testing.T) {
	seed := *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	n := *sequences
	if n == 0 {
		n = 2000
		if raceEnabled {
			n = 200
		}
	}
	steps := 0
	for i := range n {
		s := seed + uint64(i)
		n, err := randomSession(s)
		if err != nil {
			t.Fatalf("seed %d: %v", s, err)
		}
		steps += n
	}
	t.Logf("%d random sessions (seeds %d..%d), %d messages", n, seed, seed+uint64(n)-1, steps)
}

// gen makes random session material.
type gen struct{ r *rand.Rand }

func (g gen) pick(options ...string) string { return options[g.r.IntN(len(options))] }

// words of every kind a transcript or a reply may carry: wide characters,
// combining marks, emoji, escape sequences and control characters a
// hostile peer might send, very long words.
func (g gen) word() string {
	switch g.r.IntN(12) {
	case 0:
		return g.pick("東京", "天気はどうですか", "مرحبا", "ñandú", "e\u0301", "👍🏽", "🇫🇷")
	case 1:
		return g.pick("\x1b[2J", "\x1b]0;pwned\x07", "a\rb", "\x1b[31mred\x1b[0m", "tab\there", "\u202eevil", "nul\x00")
	case 2:
		return strings.Repeat(g.pick("x", "long", "東"), 1+g.r.IntN(80))
	default:
		return g.pick("the", "time", "is", "noon", "hello", "weather", "dragon", "slept", "quota", "credits", "what", "12:00")
	}
}

func (g gen) sentence() string {
	n := 1 + g.r.IntN(14)
	w := make([]string, n)
	for i := range w {
		w[i] = g.word()
	}
	return strings.Join(w, " ") + g.pick(".", "?", "!", "")
}

func (g gen) text(max int) string {
	s := g.sentence()
	for g.r.IntN(3) > 0 && len(s) < max {
		s += " " + g.sentence()
	}
	return s
}

func (g gen) err() conversation.Error {
	e := conversation.Error{Stage: g.pick("llm", "stt", "tts", "device", "agent", "room", ""), Message: g.text(400),
		Status: []int{0, 429, 401, 500, 503}[g.r.IntN(5)], Retryable: g.r.IntN(2) == 0, Terminal: g.r.IntN(3) == 0,
		Attempt: 1 + g.r.IntN(4)}
	if g.r.IntN(2) == 0 {
		e.RetryInMs = int64(g.r.IntN(5000))
	}
	switch g.r.IntN(3) {
	case 0:
		e.Quota = &conversation.QuotaInfo{Type: g.pick("llm", "stt", "tts", ""), Category: g.pick("MaxGatewayCredits", "MaxConcurrentGatewayLLMRpm", g.word()),
			Hint: g.text(500), RemainingLimit: g.pick("0", "", g.word())}
	case 1:
		e.Hint = g.text(400)
	}
	return e
}

// session is the test's side of one random session: what it expects.
type session struct {
	g       gen
	m       Model
	said    []string // what Say was called with
	calls   []string // controller calls, in order
	pending []tea.Cmd
	reply   []string // the pieces of the reply being streamed
	closed  bool
	wantSay []string
	wantAct []string // gateway actions asked for, in key order
	quit    bool
}

func randomSession(seed uint64) (steps int, err error) {
	g := gen{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	s := &session{g: g}
	note := func(c string) { s.calls = append(s.calls, c) }
	ctl := Controller{
		SetMuted: func(bool) { note("mute") },
		Say:      func(text string) { s.said = append(s.said, text) },
		Replay:   func() { note("replay") },
	}
	embedded := g.r.IntN(3) > 0
	if embedded {
		ctl.Quota = func(rule string) error { note("quota " + rule); return nil }
		ctl.Reset = func() error { note("reset"); return nil }
	}
	info := Info{Backend: g.pick("embedded gateway", "LiveKit room"), Detail: g.text(200), TextMode: g.r.IntN(3) == 0, Echo: g.pick("on", "off (--input)", "")}
	s.m = New(info, ctl, pinned())
	s.m.now = func() time.Time { return clock }
	w, h := 20+g.r.IntN(181), 6+g.r.IntN(55)
	if err := s.deliver(tea.WindowSizeMsg{Width: w, Height: h}); err != nil {
		return 0, err
	}
	for range 10 + g.r.IntN(90) {
		if err := s.step(); err != nil {
			return steps, err
		}
		steps++
		if s.quit {
			break
		}
	}
	for len(s.pending) > 0 { // the actions still queued run to the end
		if err := s.runAction(); err != nil {
			return steps, err
		}
	}
	if strings.Join(s.said, "|") != strings.Join(s.wantSay, "|") {
		return steps, fmt.Errorf("Say was called with %q, want %q", s.said, s.wantSay)
	}
	var acts []string
	for _, c := range s.calls {
		if strings.HasPrefix(c, "quota ") || c == "reset" {
			acts = append(acts, c)
		}
	}
	if strings.Join(acts, "|") != strings.Join(s.wantAct, "|") {
		return steps, fmt.Errorf("gateway actions ran as %q, asked for %q", acts, s.wantAct)
	}
	return steps, nil
}

// deliver is one Update from a random depth, then the frame's checks.
func (s *session) deliver(msg tea.Msg) error {
	next, cmd, err := updateAt(s.g.r.IntN(40), s.m, msg)
	if err != nil {
		return err
	}
	s.m = next
	if isAction(s.m, cmd) {
		s.pending = append(s.pending, cmd)
	}
	return s.checkFrame()
}

func (s *session) runAction() error {
	cmd := s.pending[0]
	s.pending = s.pending[1:]
	return s.deliver(cmd())
}

func (s *session) checkFrame() error {
	v := s.m.View()
	w, h := max(s.m.width, 20), max(s.m.height, 1)
	if got := lipgloss.Height(v); got > h {
		return fmt.Errorf("a frame of %d rows in a terminal of %d:\n%s", got, h, v)
	}
	for i, row := range strings.Split(v, "\n") {
		if got := ansi.StringWidth(row); got > w {
			return fmt.Errorf("row %d is %d columns wide in a terminal of %d: %q", i, got, w, row)
		}
	}
	for _, bad := range []string{"\x1b[2J", "\x1b]", "\a", "\r", "\x00", "\u202e"} {
		if strings.Contains(v, bad) {
			return fmt.Errorf("the frame carries %q", bad)
		}
	}
	rows := 1 + s.g.r.IntN(20)
	if got := lipgloss.Height(s.m.status.view(s.m.styles, w, rows, s.m.now())); got > rows+2 {
		return fmt.Errorf("the status pane took %d rows at %d columns, given %d and its border:\n%s\n%q", got, w, rows, s.m.status.view(s.m.styles, w, rows, s.m.now()), s.m.status.view(s.m.styles, w, rows, s.m.now()))
	}
	return nil
}

// shownWhole checks that a tall terminal of the same width shows the
// newest reply whole, as the transcript keeps it.
func (s *session) shownWhole(text string) error {
	tall := s.m.resize(max(s.m.width, 20), 600)
	want := safetext.Sanitize(text, 2000)
	if !shows(tall.transcript.view(tall.styles, tall.width, 500), want) {
		return fmt.Errorf("the final reply %q is not shown whole:\n%s", want, tall.View())
	}
	return nil
}

func (s *session) event(p any) error { return s.deliver(EventMsg{Payload: p}) }

func (s *session) step() error {
	g := s.g
	switch k := g.r.IntN(100); {
	case k < 8:
		return s.event(conversation.State{Agent: g.pick("listening", "thinking", "speaking", "initializing"), User: g.pick("listening", "speaking")})
	case k < 14:
		return s.event(conversation.Transcript{Text: g.text(300), Final: g.r.IntN(2) == 0})
	case k < 26: // a piece of the streamed reply
		p := g.sentence()
		s.reply = append(s.reply, p)
		return s.event(conversation.AgentText{Text: p})
	case k < 32: // the reply's final text
		text := strings.Join(s.reply, " ")
		if text == "" || g.r.IntN(4) == 0 {
			text = g.text(1500)
		}
		s.reply = nil
		interrupted := g.r.IntN(4) == 0
		if err := s.event(conversation.AgentText{Text: text, Final: true, Interrupted: interrupted}); err != nil {
			return err
		}
		if utf8.ValidString(text) {
			return s.shownWhole(text)
		}
		return nil
	case k < 37:
		return s.event(s.g.err())
	case k < 40:
		return s.event(conversation.Fallback{Clip: g.pick("quota", "unavailable", "earcon_failed", "earcon_device", ""), Text: g.pick("", g.text(100)),
			Reason: g.pick("quota_exhausted", "turn_failed"), OK: g.r.IntN(2) == 0, Error: g.pick("", g.text(200))})
	case k < 43:
		return s.event(conversation.Metrics{Turn: g.r.IntN(100), EOUMs: int64(g.r.IntN(3000)), E2EMs: int64(g.r.IntN(5000))})
	case k < 44 && g.r.IntN(2) == 0:
		return s.event(conversation.Tool{Name: g.word(), Arguments: g.text(120), OK: g.r.IntN(2) == 0, Output: g.text(200)})
	case k < 44:
		return s.event(conversation.Device{Device: g.pick("microphone", "room connection", g.word()), Stage: g.pick("device", "room", ""), OK: g.r.IntN(2) == 0, Message: g.text(100)})
	case k < 46:
		s.closed = true
		var e *conversation.Error
		if g.r.IntN(2) == 0 {
			x := g.err()
			e = &x
		}
		if err := s.event(conversation.Close{Reason: g.pick("error", "user", "input_ended"), Error: e}); err != nil {
			return err
		}
		return s.deliver(ClosedMsg{})
	case k < 50:
		return s.deliver(tea.WindowSizeMsg{Width: 20 + g.r.IntN(181), Height: 6 + g.r.IntN(55)})
	case k < 53:
		bands := make([]float64, g.r.IntN(15))
		for i := range bands {
			bands[i] = -90 + g.r.Float64()*95
		}
		return s.deliver(LevelMsg{In: audio.Levels{RMS: -90 + g.r.Float64()*95, Bands: bands}, Out: -90 + g.r.Float64()*95})
	case k < 54:
		return s.deliver(tickMsg(clock))
	case k < 57:
		if len(s.pending) > 0 {
			return s.runAction()
		}
		return nil
	default:
		return s.key()
	}
}

// Keys, with what each must do.
var (
	printable = []string{"q", "m", "x", "r", "0", "f", "?", "a", "é", "東", " ", "Q", "1"}
	commands  = []tea.KeyMsg{{Type: tea.KeyCtrlO}, {Type: tea.KeyCtrlR}, {Type: tea.KeyCtrlX}, {Type: tea.KeyCtrlL}, {Type: tea.KeyCtrlZ},
		{Type: tea.KeyF1}, {Type: tea.KeyCtrlT}, {Type: tea.KeyEsc}, {Type: tea.KeyEnter}, {Type: tea.KeyBackspace}, {Type: tea.KeyCtrlC}}
)

func keyOf(s string) tea.KeyMsg {
	if s == " " {
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune(" ")}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

func (s *session) key() error {
	g := s.g
	var k tea.KeyMsg
	if g.r.IntN(3) > 0 {
		k = keyOf(g.pick(printable...))
	} else {
		k = commands[g.r.IntN(len(commands))]
	}
	before := s.m
	calls := len(s.calls)
	next, cmd, err := updateAt(g.r.IntN(40), s.m, k)
	if err != nil {
		return err
	}
	s.m = next
	if isAction(s.m, cmd) {
		s.pending = append(s.pending, cmd)
	}
	quits := isQuit(cmd)
	typing := before.typing
	switch {
	case typing && (k.Type == tea.KeyRunes || k.Type == tea.KeySpace):
		if len(s.calls) != calls || quits || s.m.input.Value() != limit(before.input.Value()+string(k.Runes)) || !s.m.typing {
			return fmt.Errorf("typing %q: calls %q, quit %v, input %q -> %q, typing %v", k.String(), s.calls[calls:], quits,
				before.input.Value(), s.m.input.Value(), s.m.typing)
		}
	case typing && k.Type == tea.KeyEnter:
		text := strings.TrimSpace(before.input.Value())
		if text != "" && !before.ended {
			s.wantSay = append(s.wantSay, text)
			if s.m.input.Value() != "" || !s.m.typing {
				return fmt.Errorf("after sending %q: input %q, typing %v", text, s.m.input.Value(), s.m.typing)
			}
		} else if s.m.input.Value() != before.input.Value() {
			return fmt.Errorf("a message not sent was changed: %q -> %q", before.input.Value(), s.m.input.Value())
		}
	case typing && k.Type == tea.KeyEsc:
		if s.m.input.Value() != before.input.Value() {
			return fmt.Errorf("esc lost the draft %q", before.input.Value())
		}
		if before.header.info.TextMode && !s.m.typing {
			return fmt.Errorf("esc closed the prompt in text mode")
		}
	}
	if quits != (k.Type == tea.KeyCtrlC || !typing && k.String() == "q") {
		return fmt.Errorf("key %q (typing %v, help %v): quit %v", k.String(), typing, before.showHelp, quits)
	}
	if before.header.info.TextMode && !s.m.typing {
		return fmt.Errorf("the prompt closed in text mode after %q", k.String())
	}
	if act := gatewayAction(k, typing, before); act != "" {
		s.wantAct = append(s.wantAct, act)
	}
	if quits {
		s.quit = true
	}
	return s.checkFrame()
}

// gatewayAction is the action k asks for, "" when none.
func gatewayAction(k tea.KeyMsg, typing bool, before Model) string {
	if before.ctl.Quota == nil || before.showHelp && (k.Type == tea.KeyF1 || k.Type == tea.KeyEsc || !typing && k.String() == "?") {
		return ""
	}
	letter := !typing && k.Type == tea.KeyRunes
	switch {
	case k.Type == tea.KeyCtrlX || letter && k.String() == "x":
		return "quota " + []string{"llm", "stt", "tts"}[before.exhaust%3] + ":credits"
	case k.Type == tea.KeyCtrlL || letter && k.String() == "r":
		return "quota llm:rate:count=2"
	case k.Type == tea.KeyCtrlZ || letter && k.String() == "0":
		return "reset"
	}
	return ""
}

// limit is what the prompt keeps of s (its 500 characters).
func limit(s string) string {
	if r := []rune(s); len(r) > 500 {
		return string(r[:500])
	}
	return s
}

func isQuit(cmd tea.Cmd) bool { return sameFunc(cmd, tea.Quit) }

// sameFunc reports whether two commands are the same function (closures
// of one literal count as the same).
func sameFunc(a, b tea.Cmd) bool {
	return a != nil && b != nil && reflect.ValueOf(a).Pointer() == reflect.ValueOf(b).Pointer()
}

// isAction reports whether cmd is the gateway action at the head of m's
// queue (it is run later, as Bubble Tea would, and its result delivered).
func isAction(m Model, cmd tea.Cmd) bool { return len(m.actions) > 0 && sameFunc(cmd, m.actions[0]) }
