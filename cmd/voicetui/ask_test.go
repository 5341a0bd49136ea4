package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

const askSecret = "ask-test-secret-value"

// gatewayEnv starts a LiveKit-style LLM endpoint that checks tokens and
// returns the environment that points voicetui at it.
func gatewayEnv(t *testing.T, handler http.HandlerFunc) []string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if gateway.VerifyToken(tok, "askkey", askSecret, time.Now()) != nil || r.URL.Path != "/v1/chat/completions" {
			pipelinetest.Refuse(w, 401, `{"error":"invalid token"}`)
			return
		}
		pipelinetest.Strict(t, handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return []string{"LIVEKIT_INFERENCE_URL=" + srv.URL + "/v1", "LIVEKIT_API_KEY=askkey", "LIVEKIT_API_SECRET=" + askSecret,
		"LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=", "OPENAI_API_KEY=", "OPENAI_BASE_URL="}
}

func TestAskPrintsTheStreamedReply(t *testing.T) {
	env := gatewayEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		pipelinetest.SSE(t, w, pipelinetest.Delta("Hello"), pipelinetest.Delta(", \x1b]0;pwned\x07world."), "[DONE]")
	})
	r := voicetui(t, env, "ask", "--llm-model", "google/gemini-2.5-flash", "say", "hello")
	if r.code != 0 || r.stdout != "Hello, ]0;pwnedworld.\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "LiveKit Inference at http://127.0.0.1") || !strings.Contains(r.stderr, "google/gemini-2.5-flash") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestAskCreditsExhausted(t *testing.T) {
	var hits pipelinetest.Counter
	env := gatewayEnv(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add()
		pipelinetest.Refuse(w, 429, pipelinetest.QuotaBody("llm", "MaxGatewayCredits"))
	})
	r := voicetui(t, env, "ask", "hello")
	if r.code != exitQuota || hits.Load() != 1 || r.stdout != "" {
		t.Fatalf("exit %d after %d requests; stdout %q", r.code, hits.Load(), r.stdout)
	}
	for _, want := range []string{"llm: quota exceeded (MaxGatewayCredits)", "hint: " + pipelinetest.CreditsHint} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, askSecret) {
		t.Fatal("the secret is on stderr")
	}
}

func TestAskRateLimitIsRetriedVisibly(t *testing.T) {
	var hits pipelinetest.Counter
	env := gatewayEnv(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add() == 1 {
			pipelinetest.Refuse(w, 429, pipelinetest.QuotaBody("llm", "MaxConcurrentGatewayLLMRpm"))
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		pipelinetest.SSE(t, w, pipelinetest.Delta("ok"), "[DONE]")
	})
	r := voicetui(t, env, "ask", "hello")
	if r.code != 0 || r.stdout != "ok\n" || hits.Load() != 2 {
		t.Fatalf("exit %d, %q after %d requests: %s", r.code, r.stdout, hits.Load(), r.stderr)
	}
	if !strings.Contains(r.stderr, "rate limited (MaxConcurrentGatewayLLMRpm)") || !strings.Contains(r.stderr, "retry 1 of 3 in 100ms") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestAskConfigurationErrors(t *testing.T) {
	none := []string{"LIVEKIT_API_KEY=", "LIVEKIT_API_SECRET=", "LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=", "OPENAI_API_KEY=", "OPENAI_BASE_URL="}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--quota", "llm:bogus", "ask", "hi"}, `kind "bogus"`},
		{[]string{"--fault", "stt:stall", "ask", "hi"}, "no timeout to stall"},
		{[]string{"--stt-script", "/no/such/file", "ask", "hi"}, "no such file"},
		{[]string{"--backend", "openai", "--openai-url", "http://localhost:1/v1", "--quota", "llm:credits", "ask", "hi"}, "drive the embedded gateway"},
		{[]string{"ask"}, "what should I ask?"},
		{[]string{"--backend", "azure", "ask", "hi"}, "backend \"azure\""},
		{[]string{"--backend", "openai", "ask", "hi"}, "OPENAI_API_KEY is not set"},
		{[]string{"--backend", "livekit", "ask", "hi"}, "LIVEKIT_API_KEY"},
	}
	for _, c := range cases {
		r := voicetui(t, none, c.args...)
		if r.code != exitDevice || !strings.Contains(r.stderr, c.want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line with %q", c.args, r.code, r.stderr, exitDevice, c.want)
		}
	}
}

var noCredentials = []string{"LIVEKIT_API_KEY=", "LIVEKIT_API_SECRET=", "LIVEKIT_INFERENCE_API_KEY=", "LIVEKIT_INFERENCE_API_SECRET=",
	"LIVEKIT_INFERENCE_URL=", "OPENAI_API_KEY=", "OPENAI_BASE_URL="}

func TestAskDefaultsToTheEmbeddedGateway(t *testing.T) {
	r := voicetui(t, noCredentials, "ask", "hello")
	if r.code != 0 || !strings.Contains(r.stdout, "embedded demo agent") || !strings.Contains(r.stderr, "embedded gateway at http://127.0.0.1:") {
		t.Fatalf("exit %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = voicetui(t, noCredentials, "ask", "--quota", "llm:credits", "hello")
	if r.code != exitQuota || !strings.Contains(r.stderr, "MaxGatewayCredits") || !strings.Contains(r.stderr, "hint: You're out of credits") {
		t.Fatalf("exit %d\nstderr %q", r.code, r.stderr)
	}
}

// A key over plain http to another machine is refused before any request,
// with the flag that allows it named; nothing is sent anywhere.
func TestPlainHTTPToAnotherMachineIsRefused(t *testing.T) {
	env := append(append([]string{}, noCredentials...), "OPENAI_API_KEY=sk-test-0123456789abcdef")
	r := voicetui(t, env, "ask", "--openai-url", "http://192.0.2.7:11434/v1", "hello")
	if r.code != 2 || !strings.Contains(r.stderr, "--allow-insecure-http") || strings.Contains(r.stderr, "sk-test") {
		t.Fatalf("exit %d\nstderr %s", r.code, r.stderr)
	}
}
