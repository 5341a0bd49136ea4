package ui

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"
	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
)

// update is the -update flag that teatest's golden package already
// defines: `go test ./ui -update` rewrites the golden files.
func update() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

// pinned renders with a fixed colour profile, whatever the terminal.
func pinned() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.ANSI)
	return r
}

var clock = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

func model(events ...any) Model {
	m := New(Info{Backend: "embedded gateway", Detail: "embedded gateway at http://127.0.0.1:7890/v1: demo agent, energy STT, espeak-ng"},
		Controller{Quota: func(string) error { return nil }, Reset: func() error { return nil }}, pinned())
	m.now = func() time.Time { return clock }
	for _, e := range events {
		m.event(conversation.Event{Payload: e})
	}
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if update() {
		os.MkdirAll("testdata", 0o755)
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./ui -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

var (
	llmCredits = conversation.Error{Stage: "llm", Message: "llm: quota exceeded (MaxGatewayCredits): LLM credit quota exceeded", Status: 429,
		Terminal: true, Attempt: 1, Quota: &conversation.QuotaInfo{Type: "llm", Category: "MaxGatewayCredits",
			Hint: "You're out of credits. Upgrade your plan or wait for the next cycle.", RemainingLimit: "0"}}
	rateLimit = conversation.Error{Stage: "llm", Message: "llm: rate limited (MaxConcurrentGatewayLLMRpm)", Status: 429,
		Retryable: true, Attempt: 2, RetryInMs: 2000, Quota: &conversation.QuotaInfo{Type: "llm", Category: "MaxConcurrentGatewayLLMRpm",
			Hint: "LLM request rate limit reached. Reduce request rate or upgrade your plan.", RemainingLimit: "0"}}
	ttsCredits = conversation.Error{Stage: "tts", Message: "tts: quota exceeded (MaxGatewayCredits)", Status: 429, Terminal: true, Attempt: 1,
		Quota: &conversation.QuotaInfo{Type: "tts", Category: "MaxGatewayCredits", Hint: "Wait for the next billing cycle or upgrade your plan.", RemainingLimit: "0"}}
	hostile = conversation.Error{Stage: "stt", Message: "stt: quota exceeded", Status: 429, Terminal: true, Attempt: 1,
		Quota: &conversation.QuotaInfo{Type: "stt", Category: "MaxGatewayCredits\x1b[2J",
			Hint: "\x1b]0;pwned\x07\x1b[31mRED\x1b[0m upgrade\x1b[2J now\r\nplease\x07", RemainingLimit: "0"}}
)

func TestGoldenPanes(t *testing.T) {
	// As the session sends them: a reply, a long reply interrupted by a
	// short word (its transcript arrives before the interruption), a
	// reply that failed after its first sentence, an interim.
	talk := []any{
		conversation.State{Agent: "thinking"},
		conversation.Transcript{Text: "what time is it", Final: true},
		conversation.AgentText{Text: "It is 12:00."}, conversation.AgentText{Text: "It is 12:00.", Final: true},
		conversation.State{Agent: "listening"},
		conversation.Transcript{Text: "tell me a long story", Final: true},
		conversation.State{Agent: "thinking"},
		conversation.AgentText{Text: "Once upon a time, there was a dragon."},
		conversation.AgentText{Text: "Once upon a time, there was a dragon. It slept.", Final: true},
		conversation.State{Agent: "speaking"},
		conversation.Transcript{Text: "ok", Final: true},
		conversation.AgentText{Text: "Once upon a time, there was a dragon.", Final: true, Interrupted: true},
		conversation.State{Agent: "thinking"},
		conversation.AgentText{Text: "Sure."},
		llmCredits,
		conversation.State{Agent: "listening"},
		conversation.Transcript{Text: "never mi"},
	}
	cases := map[string]struct {
		m    Model
		view func(Model, int) string
	}{
		"header":             {model(conversation.State{Agent: "speaking", User: "listening"}), func(m Model, w int) string { return m.header.view(m.styles, w) }},
		"transcript":         {model(talk...), func(m Model, w int) string { return m.transcript.view(m.styles, w, 9) }},
		"status_ok":          {model(), func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_llm_credits": {model(llmCredits), func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_rate_limit":  {model(rateLimit), func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_tts_credits_fallback": {model(ttsCredits, conversation.Fallback{Clip: "quota", Reason: "quota_exhausted", OK: true},
			conversation.Close{Reason: "error"}), func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_hostile_hint": {model(hostile), func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_long_message": {model(conversation.Error{Stage: "device", Attempt: 1,
			Message: `no speaker, audio is off: output device "(default)": select: no usable output device (run ` + "`voicetui devices`" + ` to list devices, then pick one with --output-device)`,
			Hint:    "replies are shown as text; pick a speaker from `voicetui devices` with --output-device"}),
			func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"status_long_hint_retry": {model(conversation.Error{Stage: "llm", Message: "llm: rate limited", Status: 429, Retryable: true, Attempt: 3, RetryInMs: 4500,
			Quota: &conversation.QuotaInfo{Type: "llm", Category: "MaxConcurrentGatewayLLMRpm", RemainingLimit: "0",
				Hint: strings.Repeat("LLM request rate limit reached, reduce the request rate or upgrade your plan. ", 4)}}),
			func(m Model, w int) string { return m.status.view(m.styles, w, 6, m.now()) }},
		"status_closed_quota": {model(llmCredits, conversation.Fallback{Clip: "quota", Reason: "quota_exhausted", OK: true}, conversation.Close{Reason: "error"}),
			func(m Model, w int) string { return m.status.view(m.styles, w, 8, m.now()) }},
		"metrics_slow": {model(conversation.Metrics{Turn: 3, EOUMs: 500, STTMs: 12, LLMTTFTMs: 640, TTSTTFBMs: 180, E2EMs: 1450}),
			func(m Model, w int) string { return m.metrics.view(m.styles, w) }},
	}
	meters := model()
	meters.meters.in = audio.Levels{RMS: -23, Peak: -9, Bands: []float64{-50, -40, -30, -20, -12, -8, -15, -25, -35, -45, -55, -60, -60, -60}}
	meters.meters.out = -18
	meters.meters.muted = true
	cases["meters_muted"] = struct {
		m    Model
		view func(Model, int) string
	}{meters, func(m Model, w int) string { return m.meters.view(m.styles, w) }}
	help := model()
	help.showHelp = true
	cases["help_overlay"] = struct {
		m    Model
		view func(Model, int) string
	}{help, func(m Model, w int) string { m = m.resize(w, 20); return m.View() }}
	cases["footer"] = struct {
		m    Model
		view func(Model, int) string
	}{model(), func(m Model, w int) string { return m.resize(w, 20).footerView(w) }}
	for name, c := range cases {
		widths := []int{60, 80}
		if strings.HasPrefix(name, "status_") {
			widths = append(widths, 120)
		}
		for _, w := range widths {
			golden(t, name+"_"+itoa(w), c.view(c.m, w))
		}
	}
}

// The status pane lays out rows first, then wraps each: a message that
// wraps is never cut in two by the hint, whatever the width; what does
// not fit gives way hint first, the first row never.
func TestStatusRowsThenWrapping(t *testing.T) {
	noSpeaker := conversation.Error{Stage: "device", Attempt: 1,
		Message: `no speaker, audio is off: output device "(default)": select: no usable output device (run ` + "`voicetui devices`" + ` to list devices, then pick one with --output-device)`,
		Hint:    "replies are shown as text; pick a speaker from `voicetui devices` with --output-device"}
	m := model(noSpeaker)
	for _, w := range []int{40, 60, 80, 120} {
		rows := strings.Split(ansi.Strip(m.status.view(m.styles, w, 12, m.now())), "\n")
		hint := -1
		last := -1 // the last row of the message
		for i, r := range rows {
			if strings.Contains(r, "hint:") {
				hint = i
			}
			if strings.Contains(r, "--output-device)") {
				last = i
			}
		}
		if hint < 0 || last < 0 || hint < last {
			t.Errorf("at %d columns the hint (row %d) is not after the whole message (ends row %d):\n%s", w, hint, last, strings.Join(rows, "\n"))
		}
	}
	for rows := 1; rows <= 8; rows++ {
		v := ansi.Strip(m.status.view(m.styles, 60, rows, m.now()))
		if h := strings.Count(v, "\n") + 1; h > rows+2 {
			t.Errorf("given %d rows the pane took %d:\n%s", rows, h-2, v)
		}
		if !strings.Contains(v, "DEVICE error") {
			t.Errorf("given %d rows the first row is gone:\n%s", rows, v)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestGoldenScreens(t *testing.T) {
	normal := model(conversation.State{Agent: "listening", User: "listening"},
		conversation.Transcript{Text: "what time is it", Final: true}, conversation.AgentText{Text: "It is 12:00.", Final: true},
		conversation.Metrics{Turn: 1, EOUMs: 500, STTMs: 2, LLMTTFTMs: 1, TTSTTFBMs: 25, E2EMs: 590})
	exhausted := model(conversation.State{Agent: "listening", User: "listening"},
		conversation.Transcript{Text: "what time is it", Final: true}, llmCredits,
		conversation.Fallback{Clip: "quota", Reason: "quota_exhausted", OK: true}, conversation.Close{Reason: "error"})
	long := model(conversation.State{Agent: "listening"}, conversation.Error{Stage: "tts", Status: 429, Terminal: true, Attempt: 1,
		Quota: &conversation.QuotaInfo{Type: "tts", Category: "MaxGatewayCredits", Hint: strings.Repeat("A very long hint. ", 30), RemainingLimit: "0"}},
		conversation.Fallback{Clip: "quota", Reason: "quota_exhausted", Error: strings.Repeat("speaker gone ", 20)}, conversation.Close{Reason: "error"})
	typing := New(Info{Backend: "embedded gateway", Detail: "embedded gateway", TextMode: true},
		Controller{Quota: func(string) error { return nil }, Reset: func() error { return nil }}, pinned())
	typing.now = func() time.Time { return clock }
	typing.event(conversation.Event{Payload: conversation.State{Agent: "speaking", User: "listening"}})
	typing.event(conversation.Event{Payload: conversation.Transcript{Text: "tell me about the weather", Final: true}})
	typing.event(conversation.Event{Payload: conversation.AgentText{Text: "It is sunny today."}})
	typing.input.SetValue("and tomorrow?")
	for name, m := range map[string]Model{"screen_normal": normal, "screen_quota_exhausted": exhausted, "screen_long_hint": long, "screen_typing_no_mic": typing} {
		for _, size := range [][2]int{{60, 20}, {80, 24}, {120, 30}} {
			m = m.resize(size[0], size[1])
			v := m.View()
			if h := lipgloss.Height(v); h > size[1] {
				t.Errorf("%s at %dx%d is %d rows high", name, size[0], size[1], h)
			}
			if w := lipgloss.Width(v); w > size[0] {
				t.Errorf("%s at %dx%d is %d columns wide", name, size[0], size[1], w)
			}
			golden(t, name+"_"+itoa(size[0])+"x"+itoa(size[1]), v)
		}
	}
}

// Nothing from the network reaches the terminal as a control sequence.
func TestHostileTextIsInert(t *testing.T) {
	m := model(hostile, conversation.Transcript{Text: "hi\x1b[2J\x1b]52;c;cGF3bmVk\x07\u202eevil", Final: true},
		conversation.AgentText{Text: "ok\x1b[?1049h", Final: true})
	m = m.resize(80, 24)
	v := m.View()
	for _, bad := range []string{"\x1b[2J", "\x1b]", "\x07", "\x1b[?1049h", "\r", "\u202e"} {
		if strings.Contains(v, bad) {
			t.Fatalf("the screen contains %q", bad)
		}
	}
	if !strings.Contains(v, "RED upgrade now please") {
		t.Fatalf("the hint's text is lost:\n%s", v)
	}

}

// TestMain checks for leaked goroutines, except two that belong to the
// libraries: teatest's per-program watcher, and a pending tea.Tick, which
// Bubble Tea leaves to its timer after the program ends.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("github.com/charmbracelet/x/exp/teatest.NewTestModel.func2"),
		goleak.IgnoreTopFunction("github.com/charmbracelet/bubbletea.Tick.func1"),
		// The text input's cursor blink: a command Bubble Tea is still
		// running when a teatest program ends (seen once in CI-like runs).
		goleak.IgnoreTopFunction("github.com/charmbracelet/bubbles/cursor.(*Model).BlinkCmd.func1"))
}

func TestCloseWithoutErrorEventShowsWhy(t *testing.T) {
	m := model(conversation.Close{Reason: "error", Error: &conversation.Error{Message: "microphone: device stalled", Terminal: false}})
	v := m.status.view(m.styles, 80, 8, m.now())
	if !strings.Contains(v, "microphone: device stalled") || !strings.Contains(v, "session closed (error)") {
		t.Fatal(v)
	}
	if h := ansi.Strip(m.header.view(m.styles, 80)); !strings.Contains(h, "agent closed") {
		t.Fatal(h)
	}
}

// The header says whether the speaker's echo is cancelled, and why not.
func TestHeaderShowsEchoCancellation(t *testing.T) {
	for echo, want := range map[string]string{"on": "AEC on", "off (--input)": "AEC off (--input)", "": ""} {
		m := New(Info{Backend: "embedded gateway", Echo: echo}, Controller{}, pinned())
		h := ansi.Strip(m.header.view(m.styles, 100))
		if want == "" && strings.Contains(h, "AEC") || !strings.Contains(h, want) {
			t.Errorf("echo %q: header %q, want %q", echo, h, want)
		}
	}
}

// What failed and works again ends the errors of its stage, and only
// those: the room's connection back clears a room error, not a device's.
func TestBackEndsTheErrorOfItsStage(t *testing.T) {
	lost := conversation.Error{Stage: "room", Message: "the connection to the room was lost: reconnecting", Retryable: true, Attempt: 1}
	back := conversation.Device{Device: "room connection", Stage: "room", OK: true, Message: "the connection to the room is back"}
	view := func(m Model) string { return m.status.view(m.styles, 80, 8, m.now()) }
	if v := view(model(lost, back)); strings.Contains(v, "reconnecting") || !strings.Contains(v, "room connection works again") {
		t.Fatalf("the room's back did not end its error:\n%s", v)
	}
	mic := conversation.Error{Stage: "device", Message: "microphone: stopped", Retryable: true, Attempt: 1}
	if v := view(model(mic, back)); !strings.Contains(v, "microphone: stopped") {
		t.Fatalf("the room's back ended a device error:\n%s", v)
	}
}

// A tool the agent ran (console mode) reads as a line of the transcript.
func TestToolCallIsALineOfTheTranscript(t *testing.T) {
	m := New(Info{Backend: "console agent"}, Controller{}, nil)
	var tm tea.Model = m
	tm, _ = tm.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	tm, _ = tm.Update(EventMsg{Payload: conversation.Tool{Name: "lookup_order", Arguments: `{"order":"427"}`, OK: true, Output: "order 427 shipped"}})
	tm, _ = tm.Update(EventMsg{Payload: conversation.Tool{Name: "refund", Arguments: `{}`, Output: "the system is down"}})
	view := ansi.Strip(tm.View())
	for _, want := range []string{`tool:  lookup_order {"order":"427"} -> ok: order 427 shipped`, `tool:  refund {} -> failed: the system is down`} {
		if !strings.Contains(view, want) {
			t.Errorf("no %q in:\n%s", want, view)
		}
	}
}

// A conversation that closed while the agent was thinking (console mode:
// a terminal refusal mid-turn) leaves the speaker free: f replays.
func TestReplayAfterACloseMidTurn(t *testing.T) {
	replays := 0
	m := New(Info{Backend: "console agent"}, Controller{Replay: func() { replays++ }}, nil)
	var tm tea.Model = m
	tm, _ = tm.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	tm, _ = tm.Update(EventMsg{Payload: conversation.State{Agent: "thinking", User: "listening"}})
	tm, _ = tm.Update(EventMsg{Payload: conversation.Close{Reason: "error"}})
	tm, _ = tm.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("f")})
	if replays != 1 {
		t.Fatalf("%d replays after f:\n%s", replays, ansi.Strip(tm.View()))
	}
}
