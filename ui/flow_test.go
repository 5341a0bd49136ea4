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

func TestFlowTextMode(t *testing.T) {
	var mu sync.Mutex
	var said []string
	tm := teatest.NewTestModel(t, flowModel(Controller{Say: func(s string) { mu.Lock(); said = append(said, s); mu.Unlock() }}),
		teatest.WithInitialTermSize(80, 24))
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlT})
	waitFor(t, tm, "say:")
	tm.Type("what time is it")
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	// The session answers with the typed turn as a final transcript.
	tm.Send(EventMsg(conversation.Event{Payload: conversation.Transcript{Text: "what time is it", Final: true}}))
	tm.Send(EventMsg(conversation.Event{Payload: conversation.AgentText{Text: "It is noon.", Final: true}}))
	waitFor(t, tm, "It is noon.")
	// q in text mode is a letter; outside it quits.
	tm.Send(tea.KeyMsg{Type: tea.KeyCtrlT})
	tm.Type("q")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	tm.Send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	final := tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(Model)
	mu.Lock()
	defer mu.Unlock()
	if len(said) != 1 || said[0] != "what time is it" {
		t.Fatalf("said %q", said)
	}
	if final.typing {
		t.Fatal("still typing after esc")
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
