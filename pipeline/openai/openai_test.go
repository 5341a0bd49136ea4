package openai

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testKey = "sk-test-0123456789abcdef"

// server is an OpenAI-compatible server: it checks the key and the
// request's shape as strictly as the OpenAI API, then hands the request
// to handler.
func server(t *testing.T, handler http.HandlerFunc) Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testKey {
			pipelinetest.Refuse(w, 401, `{"error":{"message":"Incorrect API key provided: `+strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")+`.","type":"invalid_request_error","code":"invalid_api_key"}}`)
			return
		}
		pipelinetest.Strict(t, handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := ConfigFromEnv(func(k string) string {
		return map[string]string{"OPENAI_BASE_URL": srv.URL + "/v1", "OPENAI_API_KEY": testKey}[k]
	})
	cfg.Retry = provider.Retry{First: time.Millisecond, Interval: time.Millisecond, Timeout: 2 * time.Second}
	return cfg
}

func openAIError(code, typ, message string) string {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": message, "type": typ, "code": code, "param": nil}})
	return string(b)
}

func chat(t *testing.T, cfg Config) (string, error) {
	t.Helper()
	c, err := NewChat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Chat(context.Background(), []provider.Message{{Role: "user", Content: "hi"}})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for s.Next() {
		b.WriteString(s.Current())
	}
	return b.String(), s.Err()
}

func TestChatOpenAIErrors(t *testing.T) {
	cases := []struct {
		name                string
		status              int
		body                string
		terminal, retryable bool
		quota               bool
		attempts            int
	}{
		{"insufficient_quota", 429, openAIError("insufficient_quota", "insufficient_quota", "You exceeded your current quota, please check your plan and billing details."), true, false, true, 1},
		{"billing_hard_limit_reached", 400, openAIError("billing_hard_limit_reached", "invalid_request_error", "Billing hard limit has been reached"), true, false, true, 1},
		{"rate_limit_exceeded", 429, openAIError("rate_limit_exceeded", "requests", "Rate limit reached for gpt-4.1-mini"), false, true, true, 1 + provider.DefaultRetries},
		{"server_error", 500, openAIError("", "server_error", "The server had an error"), false, true, false, 1 + provider.DefaultRetries},
		{"bad request", 400, openAIError("", "invalid_request_error", "messages is required"), false, false, false, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add()
				pipelinetest.Refuse(w, c.status, c.body)
			})
			_, err := chat(t, cfg)
			if _, ok := provider.AsQuota(err); ok != c.quota {
				t.Fatalf("quota error %v: %v", ok, err)
			}
			if provider.Terminal(err) != c.terminal || provider.Retryable(err) != c.retryable || hits.Load() != c.attempts {
				t.Fatalf("%v: terminal=%v retryable=%v after %d attempts", err, provider.Terminal(err), provider.Retryable(err), hits.Load())
			}
		})
	}
}

func TestChatInvalidKeyIsTerminalAndHidesTheKey(t *testing.T) {
	var hits pipelinetest.Counter
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) { hits.Add() })
	cfg.APIKey = "sk-wrong-9876543210fedcba"
	_, err := chat(t, cfg)
	se, ok := provider.AsStatus(err)
	if !ok || se.StatusCode != 401 || !provider.Terminal(err) {
		t.Fatalf("got %v", err)
	}
	if strings.Contains(err.Error(), "9876543210") {
		t.Fatalf("the key is in the message: %v", err)
	}
}

func TestChatStreams(t *testing.T) {
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		json.NewDecoder(r.Body).Decode(&req) // its shape was checked by server
		if req.Model != DefaultChatModel || !req.Stream {
			t.Errorf("request %+v", req)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		pipelinetest.SSE(t, w, pipelinetest.Delta("It "), pipelinetest.Delta("works."), "[DONE]")
	})
	got, err := chat(t, cfg)
	if got != "It works." || err != nil {
		t.Fatalf("%q %v", got, err)
	}
}

func TestTranscription(t *testing.T) {
	var mu sync.Mutex
	var uploads [][]int16
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audio/transcriptions" {
			t.Errorf("path %s", r.URL.Path)
		}
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			t.Error(err)
			return
		}
		if r.FormValue("model") != DefaultSTTModel || r.FormValue("language") != "de" {
			t.Errorf("form %v", r.MultipartForm.Value)
		}
		f, _, err := r.FormFile("file")
		if err != nil {
			t.Error(err)
			return
		}
		wav, err := audio.NewWAVReader(f, "upload.wav")
		if err != nil || wav.Format() != audio.Pipeline {
			t.Errorf("upload is not 16 kHz mono WAV: %v", err)
			return
		}
		pcm := make([]int16, wav.Samples())
		n, _ := wav.ReadSamples(pcm)
		mu.Lock()
		uploads = append(uploads, pcm[:n])
		k := len(uploads)
		mu.Unlock()
		if k == 2 {
			pipelinetest.Refuse(w, 429, openAIError("insufficient_quota", "insufficient_quota", "You exceeded your current quota."))
			return
		}
		w.Write([]byte(`{"text":"guten \u001b]0;owned\u0007tag"}`))
	})
	cfg.Language = "de"
	tr, err := NewTranscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tr.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	first := make([]int16, 8000)
	for i := range first {
		first[i] = int16(i)
	}
	s.Write(first[:3000])
	s.Write(first[3000:])
	s.Finalize()
	ev, err := s.Recv()
	if err != nil || ev.Type != provider.FinalTranscript || ev.Text != "guten tag" {
		t.Fatalf("%+v %v (the title escape must be stripped)", ev, err)
	}
	if ev, err := s.Recv(); err != nil || ev.Type != provider.Finalized {
		t.Fatalf("%+v %v", ev, err)
	}
	s.Write(first[:100])
	s.Finalize()
	_, err = s.Recv()
	if q, ok := provider.AsQuota(err); !ok || !provider.Terminal(err) || q.ErrStage() != provider.StageSTT {
		t.Fatalf("got %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(uploads) != 2 || len(uploads[0]) != 8000 || uploads[0][7999] != 7999 || len(uploads[1]) != 100 {
		t.Fatalf("uploads of %d utterances", len(uploads))
	}
}

func TestSpeech(t *testing.T) {
	var hits pipelinetest.Counter
	var inputs []string
	var mu sync.Mutex
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		var req map[string]string
		json.NewDecoder(r.Body).Decode(&req)
		if req["response_format"] != "pcm" || req["voice"] != DefaultVoice || req["model"] != DefaultTTSModel {
			t.Errorf("request %v", req)
		}
		if hits.Add() == 1 {
			pipelinetest.Refuse(w, 429, openAIError("rate_limit_exceeded", "requests", "slow down"))
			return
		}
		mu.Lock()
		inputs = append(inputs, req["input"])
		mu.Unlock()
		// The text's bytes as samples, written in odd-sized pieces so
		// that samples straddle writes.
		var pcm []byte
		for _, c := range []byte(req["input"]) {
			pcm = binary.LittleEndian.AppendUint16(pcm, uint16(c)*3)
		}
		for i := 0; i < len(pcm); i += 3 {
			w.Write(pcm[i:min(i+3, len(pcm))])
			w.(http.Flusher).Flush()
		}
	})
	sp, err := NewSpeech(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sp.SampleRate() != 24000 {
		t.Fatal(sp.SampleRate())
	}
	u, err := sp.Synthesize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Push("Hello.")
	u.Push("Bye.")
	u.Flush()
	if err := u.Push("late"); err == nil {
		t.Fatal("Push after Flush succeeded")
	}
	var got []int16
	for {
		pcm, err := u.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, pcm...)
	}
	var want []int16
	for _, c := range []byte("Hello.Bye.") {
		want = append(want, int16(c)*3)
	}
	if len(got) != len(want) {
		t.Fatalf("%d samples, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sample %d: %d, want %d", i, got[i], want[i])
		}
	}
	if len(inputs) != 2 || inputs[0] != "Hello." || hits.Load() != 3 {
		t.Fatalf("inputs %q after %d requests (the first was rate limited and retried)", inputs, hits.Load())
	}
}

func TestConfigValidation(t *testing.T) {
	cfg := ConfigFromEnv(func(string) string { return "" })
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "OPENAI_API_KEY") {
		t.Fatalf("OpenAI without a key: %v", err)
	}
	cfg.BaseURL = "http://localhost:11434/v1" // Ollama needs no key
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.BaseURL = "localhost:11434"
	if err := cfg.Validate(); err == nil {
		t.Fatal("a URL without a scheme was accepted")
	}
	// A key over plain http to another machine is refused unless allowed;
	// no key, nothing to protect.
	cfg.BaseURL = "http://192.168.1.20:11434/v1"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("no key: %v", err)
	}
	cfg.APIKey = "sk-local-0123456789"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--allow-insecure-http") {
		t.Fatalf("a key over plain http: %v", err)
	}
	if _, err := NewChat(cfg); err == nil {
		t.Fatal("a client was built anyway")
	}
	cfg.AllowInsecureHTTP = true
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

// chatEvents decodes data as a chat SSE stream, the way a response is.
func chatEvents(data []byte) (string, error) {
	b := newBody(context.Background(), provider.StageLLM, time.Minute)
	b.rc = io.NopCloser(bytes.NewReader(data))
	s := newChatStream(&http.Response{Header: http.Header{"Content-Type": {"text/event-stream"}}}, b)
	defer s.Close()
	var out strings.Builder
	for s.Next() {
		out.WriteString(s.Current())
	}
	return out.String(), s.Err()
}

func TestChatEventsEdgeCases(t *testing.T) {
	cases := []struct {
		in, text string
		err      any
	}{
		{"data: " + pipelinetest.Delta("a") + "\n\ndata: [DONE]\n\n", "a", nil},
		{"data: " + pipelinetest.Delta("a") + "\r\n\r\ndata: [DONE]\r\n\r\n", "a", nil},
		{"data: " + pipelinetest.Delta("a") + "\n\n", "a", new(*provider.ConnectionError)}, // no [DONE]
		{"data: {\"choices\":[{\"delta\":\n\n", "", new(*provider.ProtocolError)},
		{"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\ndata: {\"y\":1}\n\n", "", new(*provider.ProtocolError)}, // two data lines join
		{"event: error\ndata: {\"message\":\"boom\"}\n\n", "", new(*provider.ServerError)},
		{": keepalive\n\nretry: 5\n\ndata: [DONE]\n\n", "", nil},
	}
	for _, c := range cases {
		text, err := chatEvents([]byte(c.in))
		if text != c.text {
			t.Errorf("%q: text %q, want %q", c.in, text, c.text)
		}
		if c.err == nil {
			if err != nil {
				t.Errorf("%q: %v", c.in, err)
			}
			continue
		}
		if !errors.As(err, c.err) {
			t.Errorf("%q: %T %v", c.in, err, err)
		}
	}
}

func FuzzChatStream(f *testing.F) {
	for _, s := range []string{
		"data: " + pipelinetest.Delta("Hello") + "\n\ndata: [DONE]\n\n",
		"data: " + pipelinetest.QuotaBody("llm", "MaxGatewayCredits") + "\n\n",
		"event: error\ndata: {\"error\":{\"message\":\"x\",\"code\":\"insufficient_quota\"}}\n\n",
		": c\n\ndata: {\"choices\":[]}\n\n", "data: {\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := chatEvents(data)
		if err == nil {
			return
		}
		var c provider.Classified
		if !errors.As(err, &c) || c.ErrStage() != provider.StageLLM {
			t.Fatalf("untyped error %T %v", err, err)
		}
		if strings.ContainsAny(err.Error(), "\x1b\n") {
			t.Fatalf("unsafe message %q", err.Error())
		}
	})
}

func TestChatStalledErrorBodyTimesOut(t *testing.T) {
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(429)
		w.Write([]byte(`{"error":{"message":"slow`))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // never finishes the body
	})
	cfg.Retry.Timeout = 100 * time.Millisecond
	cfg.Retry.Max = -1
	_, err := chat(t, cfg)
	se, ok := provider.AsStatus(err)
	if !ok || se.StatusCode != 429 || !provider.Retryable(err) {
		t.Fatalf("got %v", err)
	}
}

func TestChatEndlessEventIsCapped(t *testing.T) {
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: " + pipelinetest.Delta("hi") + "\n\n"))
		line := []byte("data: " + strings.Repeat("x", 64<<10) + "\n")
		for range (MaxChatResponse >> 16) + 2 { // data lines, never a blank one
			if _, err := w.Write(line); err != nil {
				return
			}
		}
	})
	got, err := chat(t, cfg)
	var pe *provider.ProtocolError
	if got != "hi" || !errors.As(err, &pe) {
		t.Fatalf("%q, %v", got, err)
	}
}
