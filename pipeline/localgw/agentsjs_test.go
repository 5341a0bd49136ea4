package localgw_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/agentsjs"
)

// The embedded gateway against a client nobody here wrote: the LiveKit
// inference clients of @livekit/agents 1.9.0 from npm (what a user's
// agent runs), driven by testdata/agentsjs_clients.mjs without a room.
// The gateway checks every message they send against its strict schemas,
// so this also proves those schemas accept the real client.
func TestAgentsJSInferenceClients(t *testing.T) {
	dir := agentsjs.Install(t)
	s, err := localgw.New(localgw.Options{STTScript: []string{"what time is it", "goodbye"}, TokenDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	env := []string{"LIVEKIT_INFERENCE_URL=" + s.URL(), "LIVEKIT_API_KEY=" + localgw.DefaultKey, "LIVEKIT_API_SECRET=" + localgw.DefaultSecret,
		"LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=", "LIVEKIT_URL="}
	run := func(t *testing.T, v any, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		out, err := agentsjs.Node(t, ctx, dir, "testdata/agentsjs_clients.mjs", env, args...)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
	}

	t.Run("llm", func(t *testing.T) {
		var got struct{ Text string }
		run(t, &got, "llm", "help")
		if got.Text != localgw.Reply("help", time.Now()) {
			t.Fatalf("reply %q", got.Text)
		}
	})
	t.Run("stt final transcripts without finalize, no crash at close", func(t *testing.T) {
		wav := speechtest.WAV(t, 500*time.Millisecond, "What time is it?", time.Second, "Goodbye.", 1500*time.Millisecond)
		var got struct {
			Finals []string
			Events []int
		}
		run(t, &got, "stt", wav, "2")
		if !slices.Equal(got.Finals, []string{"what time is it", "goodbye"}) {
			t.Fatalf("finals %q (events %v)", got.Finals, got.Events)
		}
	})
	t.Run("tts", func(t *testing.T) {
		var got struct {
			Samples, Rate, Peak int
			Errors              []string
		}
		run(t, &got, "tts", "Hello there, this is the embedded gateway.")
		if got.Samples < got.Rate || got.Rate != 16000 || got.Peak < 1000 || len(got.Errors) != 0 {
			t.Fatalf("tts %+v: want over a second of audible 16 kHz speech", got)
		}
	})
	// agents-js's openai client keeps only the body's "error" string (the
	// pitfall BACKGROUND.md describes): what it can know is the 429 and
	// that sentence, which must be the gateway's own.
	t.Run("llm credits exhausted: 429 with the quota body", func(t *testing.T) {
		q, _ := localgw.ParseQuota("llm:credits")
		s.Policy().AddQuota(q)
		defer s.Policy().Reset()
		var got struct {
			Error struct {
				Name   string
				Status int
				Body   any
			}
		}
		run(t, &got, "llm", "help")
		if got.Error.Name != "APIStatusError" || got.Error.Status != 429 ||
			got.Error.Body != "LLM credit quota exceeded, category: MaxGatewayCredits, remaining_limit: 0" {
			t.Fatalf("error %+v", got.Error)
		}
	})
	// The gateway saw who asked.
	req, _ := json.Marshal(s.Status())
	if !strings.Contains(string(req), "livekit-agents-js/1.9.0") {
		t.Fatalf("status %s", req)
	}
}
