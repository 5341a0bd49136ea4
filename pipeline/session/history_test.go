package session

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func msgs(spec string) []provider.Message {
	var out []provider.Message
	roles := map[byte]string{'s': "system", 'u': "user", 'a': "assistant"}
	for _, m := range strings.Fields(spec) {
		out = append(out, provider.Message{Role: roles[m[0]], Content: m})
	}
	return out
}

func spec(h []provider.Message) string {
	var parts []string
	for _, m := range h {
		parts = append(parts, m.Content)
	}
	return strings.Join(parts, " ")
}

func TestHistoryIsBounded(t *testing.T) {
	for _, c := range []struct {
		in           string
		turns, chars int
		want         string
	}{
		{"s u1 a1 u2 a2 u3", 20, 1000, "s u1 a1 u2 a2 u3"},
		{"s u1 a1 u2 a2 u3", 2, 1000, "s u2 a2 u3"},
		{"s u1 a1 u2 a2 u3", 1, 1000, "s u3"},
		{"s u1 a1 u2 a2 u3", 20, 8, "s u2 a2 u3"},               // 2+2+2 characters fit, 2 more do not
		{"s u1 a1 a1b u2", 20, 6, "s u2"},                       // an answer in two parts goes with its turn
		{"s u1xxxxxxxxxxxxxxxx", 20, 4, "s u1xxxxxxxxxxxxxxxx"}, // the turn asked stays, however long
		{"u1 a1 u2", 1, 1000, "u2"},                             // no system prompt
	} {
		if got := spec(bounded(msgs(c.in), c.turns, c.chars)); got != c.want {
			t.Errorf("bounded(%q, %d turns, %d chars) = %q, want %q", c.in, c.turns, c.chars, got, c.want)
		}
	}
}

// A long conversation resends only its newest turns, and always the system
// prompt.
func TestMachineHistoryBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var script []pipelinetest.Segment
		for range 5 {
			script = append(script, pipelinetest.Voice(sec), pipelinetest.Silence(3*sec))
		}
		r := newRig(script...)
		if err := r.run(t, context.Background(), func(o *Options) { o.HistoryTurns = 2 }); err != nil {
			t.Fatal(err)
		}
		calls := r.llm.Calls()
		if len(calls) != 5 {
			t.Fatalf("%d LLM calls", len(calls))
		}
		last := calls[4]
		roles := ""
		for _, m := range last {
			roles += m.Role[:1]
		}
		if roles != "suau" || last[0].Content != DefaultSystemPrompt {
			t.Fatalf("the 5th request sent %q: %+v", roles, last)
		}
	})
}
