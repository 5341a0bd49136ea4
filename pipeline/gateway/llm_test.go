package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

var hello = []provider.Message{{Role: "user", Content: "hello"}}

func newLLM(t *testing.T, cfg Config) *LLM {
	t.Helper()
	l, err := NewLLM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// collect reads a whole reply.
func collect(t *testing.T, s provider.TextStream) (string, error) {
	t.Helper()
	defer s.Close()
	var b strings.Builder
	for s.Next() {
		b.WriteString(s.Current())
	}
	return b.String(), s.Err()
}

func streamReply(t *testing.T, w http.ResponseWriter, words ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	events := []string{`{"choices":[{"index":0,"delta":{"role":"assistant"}}]}`}
	for _, word := range words {
		events = append(events, pipelinetest.Delta(word))
	}
	events = append(events, `{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2}}`, "[DONE]")
	pipelinetest.SSE(t, w, events...)
}

func TestLLMStreamsReply(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add()
		if r.URL.Path != "/chat/completions" || r.Method != http.MethodPost {
			t.Errorf("%s %s", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("X-LiveKit-Inference-Priority"); got != "low" {
			t.Errorf("priority header %q", got)
		}
		var req struct {
			Model         string             `json:"model"`
			Stream        bool               `json:"stream"`
			Messages      []provider.Message `json:"messages"`
			StreamOptions struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		if req.Model != DefaultLLMModel || !req.Stream || !req.StreamOptions.IncludeUsage || len(req.Messages) != 1 || req.Messages[0].Content != "hello" {
			t.Errorf("request %+v", req)
		}
		streamReply(t, w, "Hello", ", ", "world!")
	}))
	cfg.Priority = "low"
	l := newLLM(t, cfg)
	for range 2 { // a fresh token each time; both must be accepted
		s, err := l.Chat(context.Background(), hello)
		if err != nil {
			t.Fatal(err)
		}
		got, err := collect(t, s)
		if err != nil || got != "Hello, world!" {
			t.Fatalf("reply %q, %v", got, err)
		}
	}
	if hits.Load() != 2 {
		t.Fatalf("server saw %d requests, want 2", hits.Load())
	}
}

func TestLLMCreditsExhaustedIsTerminalAtOnce(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add()
		pipelinetest.Refuse(w, http.StatusTooManyRequests, pipelinetest.QuotaBody("llm", "MaxGatewayCredits"))
	}))
	_, err := newLLM(t, cfg).Chat(context.Background(), hello)
	q, ok := provider.AsQuota(err)
	if !ok {
		t.Fatalf("got %T %v, want a QuotaError", err, err)
	}
	if !provider.Terminal(err) || provider.Retryable(err) {
		t.Fatalf("credits: terminal=%v retryable=%v", provider.Terminal(err), provider.Retryable(err))
	}
	if q.QuotaType != "llm" || q.Category != "MaxGatewayCredits" || q.Hint != pipelinetest.CreditsHint || q.RemainingLimit != "0" || q.CurrentUsage != "55" {
		t.Fatalf("fields %+v", q)
	}
	if q.Status.StatusCode != 429 || q.Status.RequestID != "req_123" || q.Status.Usage.CreditsUsed != "1000" {
		t.Fatalf("status %+v", q.Status)
	}
	if hits.Load() != 1 {
		t.Fatalf("server saw %d attempts; a terminal error must not be retried", hits.Load())
	}
}

func TestLLMRateLimitsAreRetried(t *testing.T) {
	for _, category := range []string{"MaxConcurrentGatewayLLMRpm", "MaxConcurrentGatewayLLMTpm", "MaxConcurrentGatewaySTT", "MaxConcurrentGatewayTTS"} {
		t.Run(category+"/persistent", func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add()
				pipelinetest.Refuse(w, http.StatusTooManyRequests, pipelinetest.QuotaBody("llm", category))
			}))
			var retries []int
			cfg.Retry.OnRetry = func(n int, err error, wait time.Duration) {
				retries = append(retries, n)
				if !provider.Retryable(err) {
					t.Errorf("retried a non-retryable error %v", err)
				}
			}
			_, err := newLLM(t, cfg).Chat(context.Background(), hello)
			q, ok := provider.AsQuota(err)
			if !ok || q.Category != category || provider.Terminal(err) || !provider.Retryable(err) {
				t.Fatalf("got %v (quota %v), want a transient %s", err, ok, category)
			}
			if hits.Load() != 1+provider.DefaultRetries || len(retries) != provider.DefaultRetries {
				t.Fatalf("server saw %d attempts, %d retries reported; want %d", hits.Load(), len(retries), 1+provider.DefaultRetries)
			}
		})
		t.Run(category+"/recovers", func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add() <= 2 {
					pipelinetest.Refuse(w, http.StatusTooManyRequests, pipelinetest.QuotaBody("llm", category))
					return
				}
				streamReply(t, w, "fine")
			}))
			s, err := newLLM(t, cfg).Chat(context.Background(), hello)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := collect(t, s); got != "fine" || err != nil {
				t.Fatalf("reply %q, %v", got, err)
			}
			if hits.Load() != 3 {
				t.Fatalf("server saw %d attempts, want 3", hits.Load())
			}
		})
	}
}

func TestLLMOddQuotaBodiesFailOpen(t *testing.T) {
	cases := []struct {
		name, body          string
		category, remaining string
	}{
		{"unknown category", `{"type":"inference_quota_exceeded","quota_type":"llm","category":"MaxFutureThing","remaining_limit":"0"}`, "MaxFutureThing", "0"},
		{"missing category", `{"type":"inference_quota_exceeded","quota_type":"llm","remaining_limit":"0"}`, "", "0"},
		{"list category", `{"type":"inference_quota_exceeded","quota_type":"llm","category":["MaxGatewayCredits"],"remaining_limit":"0"}`, "", "0"},
		{"numeric remaining_limit", `{"type":"inference_quota_exceeded","quota_type":"llm","category":"MaxConcurrentGatewayLLMRpm","remaining_limit":0}`, "MaxConcurrentGatewayLLMRpm", ""},
		{"object hint", `{"type":"inference_quota_exceeded","quota_type":"llm","hint":{"x":1},"category":null}`, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add()
				pipelinetest.Refuse(w, http.StatusTooManyRequests, c.body)
			}))
			_, err := newLLM(t, cfg).Chat(context.Background(), hello)
			q, ok := provider.AsQuota(err)
			if !ok {
				t.Fatalf("got %T %v, want a QuotaError", err, err)
			}
			if provider.Terminal(err) || !provider.Retryable(err) {
				t.Fatal("an unclear quota body must fail open: transient and retryable")
			}
			if q.Category != c.category || q.RemainingLimit != c.remaining || q.QuotaType != "llm" {
				t.Fatalf("fields %+v", q)
			}
			if hits.Load() != 1+provider.DefaultRetries {
				t.Fatalf("server saw %d attempts", hits.Load())
			}
		})
	}
}

// The trap of BACKGROUND.md: "error" is a bare string, so a client that
// expects OpenAI's {"error": {...}} keeps nothing. Ours reads the body.
func TestLLMBareStringErrorIsTyped(t *testing.T) {
	body := `{"error":"LLM token credit quota exceeded, category: MaxGatewayCredits, remaining_limit: 0","type":"inference_quota_exceeded","category":"MaxGatewayCredits","quota_type":"llm","remaining_limit":"0","hint":"Upgrade."}`
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pipelinetest.Refuse(w, http.StatusTooManyRequests, body)
	}))
	_, err := newLLM(t, cfg).Chat(context.Background(), hello)
	q, ok := provider.AsQuota(err)
	if !ok || !provider.Terminal(err) || q.Hint != "Upgrade." {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "LLM token credit quota exceeded") {
		t.Fatalf("message lost: %v", err)
	}

	plain := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pipelinetest.Refuse(w, http.StatusBadRequest, `{"error":"model not found: nope/nope"}`)
	}))
	_, err = newLLM(t, plain).Chat(context.Background(), hello)
	se, ok := provider.AsStatus(err)
	if !ok || se.StatusCode != 400 || se.Message != "model not found: nope/nope" || provider.Retryable(err) || provider.Terminal(err) {
		t.Fatalf("got %#v", err)
	}
}

func TestLLMBadKeyIsTerminalAndShowsNoSecret(t *testing.T) {
	const wrong = "wrong-secret-for-this-test-only"
	var hits pipelinetest.Counter
	// A careless server quoting the token and the secret it expected.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add()
		pipelinetest.Refuse(w, 401, `{"error":"invalid token `+r.Header.Get("Authorization")+` (signed with `+wrong+`?)"}`)
	}))
	defer srv.Close()
	cfg := fakeGateway(t, http.NotFoundHandler())
	cfg.URL, cfg.APISecret = srv.URL+"/v1", wrong
	_, err := newLLM(t, cfg).Chat(context.Background(), hello)
	se, ok := provider.AsStatus(err)
	if !ok || se.StatusCode != 401 || !provider.Terminal(err) || provider.Retryable(err) {
		t.Fatalf("got %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d attempts; bad credentials must not be retried", hits.Load())
	}
	noSecrets(t, err.Error(), wrong)
}

func TestLLMServerErrorThenSuccess(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add() == 1 {
			pipelinetest.Refuse(w, http.StatusInternalServerError, `{"error":"upstream failed"}`)
			return
		}
		streamReply(t, w, "recovered")
	}))
	s, err := newLLM(t, cfg).Chat(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := collect(t, s); got != "recovered" || err != nil || hits.Load() != 2 {
		t.Fatalf("reply %q, %v after %d attempts", got, err, hits.Load())
	}
}

func TestLLMDisconnectAfterContentIsNotRetried(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add()
		w.Header().Set("Content-Type", "text/event-stream")
		pipelinetest.SSE(t, w, pipelinetest.Delta("Hel"))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // mid-stream, no [DONE]
		}
	}))
	s, err := newLLM(t, cfg).Chat(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, s)
	var ce *provider.ConnectionError
	if got != "Hel" || !errors.As(err, &ce) {
		t.Fatalf("reply %q, %v; want the text so far and a connection error", got, err)
	}
	if hits.Load() != 1 {
		t.Fatalf("%d attempts: content was delivered, nothing may be retried", hits.Load())
	}
}

func TestLLMMalformedSSE(t *testing.T) {
	t.Run("after content", func(t *testing.T) {
		var hits pipelinetest.Counter
		cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add()
			w.Header().Set("Content-Type", "text/event-stream")
			// Noise the SSE format says to ignore, then a good chunk, then garbage.
			w.Write([]byte("garbage without colon\n: a comment\nevent: ping\nretry: 10\nid: 7\n\n"))
			pipelinetest.SSE(t, w, pipelinetest.Delta("ok"), `{"choices": [{"delta": {"content": 42}}]}`, pipelinetest.Delta("never"))
		}))
		s, err := newLLM(t, cfg).Chat(context.Background(), hello)
		if err != nil {
			t.Fatal(err)
		}
		got, err := collect(t, s)
		var pe *provider.ProtocolError
		if got != "ok" || !errors.As(err, &pe) || hits.Load() != 1 {
			t.Fatalf("reply %q, %v, %d attempts", got, err, hits.Load())
		}
	})
	t.Run("before content", func(t *testing.T) {
		var hits pipelinetest.Counter
		cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add()
			w.Header().Set("Content-Type", "text/event-stream")
			pipelinetest.SSE(t, w, `{not json`)
		}))
		_, err := newLLM(t, cfg).Chat(context.Background(), hello)
		var pe *provider.ProtocolError
		if !errors.As(err, &pe) || hits.Load() != 1+provider.DefaultRetries {
			t.Fatalf("%v after %d attempts", err, hits.Load())
		}
		if strings.ContainsRune(err.Error(), '\n') {
			t.Fatalf("multi-line message %q", err)
		}
	})
}

func TestLLMErrorEventInStream(t *testing.T) {
	cases := map[string]struct {
		event string
		check func(error) bool
	}{
		"openai error": {`{"error":{"message":"overloaded","type":"server_error"}}`, func(err error) bool {
			var se *provider.ServerError
			return errors.As(err, &se) && se.Message == "overloaded"
		}},
		"quota body": {pipelinetest.QuotaBody("llm", "MaxGatewayCredits"), func(err error) bool {
			q, ok := provider.AsQuota(err)
			return ok && provider.Terminal(err) && q.Category == "MaxGatewayCredits"
		}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				pipelinetest.SSE(t, w, pipelinetest.Delta("Sure"), c.event)
			}))
			s, err := newLLM(t, cfg).Chat(context.Background(), hello)
			if err != nil {
				t.Fatal(err)
			}
			got, err := collect(t, s)
			if got != "Sure" || !c.check(err) {
				t.Fatalf("reply %q, %T %v", got, err, err)
			}
		})
	}
}

func TestLLMOversizedBodyIsCapped(t *testing.T) {
	huge := `{"type":"inference_quota_exceeded","category":"MaxGatewayCredits","hint":"` + strings.Repeat("x", 1<<20) + `"}`
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pipelinetest.Refuse(w, http.StatusInternalServerError, huge)
	}))
	cfg.Retry.Max = -1
	_, err := newLLM(t, cfg).Chat(context.Background(), hello)
	se, ok := provider.AsStatus(err)
	if !ok || len(se.Body) != provider.MaxBody || se.StatusCode != 500 {
		t.Fatalf("got %v (body %d bytes)", err, len(se.Body))
	}
	if len(err.Error()) > 1000 {
		t.Fatalf("message of %d bytes", len(err.Error()))
	}
}

func TestLLMStalledStreamTimesOut(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		if hits.Add() > 1 {
			pipelinetest.SSE(t, w, pipelinetest.Delta("first"))
		}
		w.(http.Flusher).Flush()
		select { // stall
		case <-release:
		case <-r.Context().Done():
		}
	}))
	cfg.Retry.Timeout = 100 * time.Millisecond
	cfg.Retry.Max = 1
	// Attempt 1 stalls before content (retried), attempt 2 after it.
	s, err := newLLM(t, cfg).Chat(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	got, err := collect(t, s)
	var te *provider.TimeoutError
	if got != "first" || !errors.As(err, &te) || !provider.Retryable(err) || hits.Load() != 2 {
		t.Fatalf("reply %q, %v after %d attempts", got, err, hits.Load())
	}
}

func TestLLMCancelled(t *testing.T) {
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // so that the server notices the client leaving
		<-r.Context().Done()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newLLM(t, cfg).Chat(ctx, hello)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestLLMRetryAfterIsHonouredAndCapped(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add() == 1 {
			w.Header().Set("Retry-After", "30")
			pipelinetest.Refuse(w, http.StatusTooManyRequests, pipelinetest.QuotaBody("llm", "MaxConcurrentGatewayLLMRpm"))
			return
		}
		streamReply(t, w, "ok")
	}))
	cfg.Retry.MaxRetryAfter = 20 * time.Millisecond
	var waits []time.Duration
	cfg.Retry.OnRetry = func(_ int, _ error, wait time.Duration) { waits = append(waits, wait) }
	s, err := newLLM(t, cfg).Chat(context.Background(), hello)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(waits) != 1 || waits[0] != 20*time.Millisecond {
		t.Fatalf("waits %v, want the 30 s Retry-After capped to 20 ms", waits)
	}
}
