package ui

import (
	"strings"
	"testing"

	"github.com/voicetui/voicetui/pipeline/conversation"
)

// BenchmarkViewLongSession draws the interface (100x30) after a long
// session: 100 turns, the transcript's 200 kept lines, each a long
// sentence, with a meter update between frames as when the user speaks.
func BenchmarkViewLongSession(b *testing.B) {
	m := New(Info{Backend: "embedded", Detail: "embedded gateway"}, Controller{}, nil).resize(100, 30)
	sentence := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 6)
	for range 100 {
		m.event(conversation.Event{Payload: conversation.Transcript{Text: sentence, Final: true}})
		m.event(conversation.Event{Payload: conversation.AgentText{Text: sentence, Final: true}})
	}
	b.ReportAllocs()
	for b.Loop() {
		next, _ := m.Update(LevelMsg{})
		m = next.(Model)
		_ = m.View()
	}
}
