package ui

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
	"github.com/voicetui/voicetui/pipeline/conversation"
)

func flowModel(ctl Controller) Model {
	m := New(Info{Backend: "embedded gateway", Detail: "test"}, ctl, pinned())
	return m
}

// waitFor waits until the screen has shown every one of what (the
// output is consumed: one call per frame of interest).
func waitFor(t *testing.T, tm *teatest.TestModel, what ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range what {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(5*time.Second), teatest.WithCheckInterval(20*time.Millisecond))
}

func TestFlowQuotaErrorShowsHint(t *testing.T) {
	tm := teatest.NewTestModel(t, flowModel(Controller{}), teatest.WithInitialTermSize(80, 24))
	tm.Send(EventMsg(conversation.Event{Payload: conversation.State{Agent: "listening", User: "listening"}}))
	waitFor(t, tm, "listening")
	tm.Send(EventMsg(conversation.Event{Payload: llmCredits}))
	waitFor(t, tm, "MaxGatewayCredits", "out of credits", "TERMINAL")
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
}

// The prompt stays open after a message: the next words typed are text,
// never commands ("q" does not quit, "m" does not mute); esc closes it,
// keeping a draft; outside it the letters are commands again.
func TestFlowTextMode(t *testing.T) {
	var mu sync.Mutex
	var said, calls []string
	ctl := Controller{Say: func(s string) { mu.Lock(); said = append(said, s); mu.Unlock() },
		SetMuted: func(bool) { mu.Lock(); calls = append(calls, "mute"); mu.Unlock() }}
	tm := teatest.NewTestModel(t, flowModel(ctl), teatest.WithInitialTermSize(80, 24))
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlT})
	waitFor(t, tm, "say:")
	tm.Type("what time is it")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	// The session answers with the typed turn as a final transcript.
	tm.Send(EventMsg(conversation.Event{Payload: conversation.Transcript{Text: "what time is it", Final: true}}))
	tm.Send(EventMsg(conversation.Event{Payload: conversation.AgentText{Text: "It is noon.", Final: true}}))
	waitFor(t, tm, "It is noon.")
	tm.Type("quit muting me")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	tm.Type("a draft")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("m")}) // a command again
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlT})
	waitFor(t, tm, "say: a draft")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(said, "|") != "what time is it|quit muting me" || strings.Join(calls, "|") != "mute" {
		t.Fatalf("said %q, calls %q", said, calls)
	}
	if final.typing || final.input.Value() != "a draft" {
		t.Fatalf("after esc: typing %v, draft %q", final.typing, final.input.Value())
	}
}

// Without a microphone the prompt is always open: esc does not close it,
// and the commands are the control keys shown under it.
func TestFlowNoMicrophone(t *testing.T) {
	var mu sync.Mutex
	var said []string
	var replays int
	ctl := Controller{Say: func(s string) { mu.Lock(); said = append(said, s); mu.Unlock() },
		Replay: func() { mu.Lock(); replays++; mu.Unlock() }}
	m := New(Info{Backend: "embedded gateway", Detail: "test", TextMode: true}, ctl, pinned())
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(80, 24))
	waitFor(t, tm, "NO MIC", "say:", "ctrl+r replay", "ctrl+c quit")
	for _, text := range []string{"help", "quit", "x marks the spot"} {
		tm.Type(text)
		tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
		tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	}
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlR})
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(said, "|") != "help|quit|x marks the spot" || replays != 1 || !final.typing {
		t.Fatalf("said %q, replays %d, typing %v", said, replays, final.typing)
	}
}

func TestFlowKeys(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	note := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	ctl := Controller{
		SetMuted: func(m bool) { note("mute " + map[bool]string{true: "on", false: "off"}[m]) },
		Replay:   func() { note("replay") },
		Quota:    func(r string) error { note("quota " + r); return nil },
		Reset:    func() error { note("reset"); return nil },
	}
	tm := teatest.NewTestModel(t, flowModel(ctl), teatest.WithInitialTermSize(60, 20))
	for _, k := range []string{"m", "m", "f", "x", "x", "x", "r", "0", "?"} {
		tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
	}
	waitFor(t, tm, "restore quota") // the help overlay lists the gateway keys
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlC})
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	mu.Lock()
	defer mu.Unlock()
	want := "mute on|mute off|replay|quota llm:credits|quota stt:credits|quota tts:credits|quota llm:rate:count=2|reset"
	if got := strings.Join(calls, "|"); got != want {
		t.Fatalf("calls %s\nwant  %s", got, want)
	}
}
