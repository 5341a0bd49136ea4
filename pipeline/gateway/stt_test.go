package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// wsHandler accepts a WebSocket and hands it to serve. Every message the
// client sends is checked against the protocol's schema for the endpoint
// (strict: case-sensitive, unknown fields and types refused) by readJSON
// and drain; one that does not conform fails the test.
func wsHandler(t testing.TB, serve func(ctx context.Context, c *websocket.Conn, r *http.Request)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		schema := wire.STTClient
		if strings.HasSuffix(r.URL.Path, "/tts") {
			schema = wire.TTSClient
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(1 << 20)
		check := func(data []byte) {
			if err := wire.Check(schema, data); err != nil {
				t.Errorf("client sent %.200s: %v", data, err)
			}
		}
		serve(context.WithValue(r.Context(), checkKey{}, check), c, r)
	})
}

type checkKey struct{}

// conform checks a client message with the checker wsHandler put in ctx.
func conform(ctx context.Context, data []byte) {
	if check, ok := ctx.Value(checkKey{}).(func([]byte)); ok {
		check(data)
	}
}

func readJSON(ctx context.Context, c *websocket.Conn) (map[string]any, error) {
	_, data, err := c.Read(ctx)
	if err != nil {
		return nil, err
	}
	conform(ctx, data)
	var m map[string]any
	return m, json.Unmarshal(data, &m)
}

// drain reads until the client goes away.
func drain(ctx context.Context, c *websocket.Conn) {
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		conform(ctx, data)
	}
}

func sendJSON(ctx context.Context, c *websocket.Conn, v any) error {
	b, _ := json.Marshal(v)
	return c.Write(ctx, websocket.MessageText, b)
}

func newSTT(t *testing.T, cfg Config) *STT {
	t.Helper()
	s, err := NewSTT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ramp is recognisable audio: sample i is i (wrapping).
func ramp(n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(i * 7)
	}
	return out
}

func TestSTTSession(t *testing.T) {
	var mu sync.Mutex
	var chunks [][]byte
	cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		if r.URL.Path != "/stt" || r.URL.Query().Get("model") != DefaultSTTModel {
			t.Errorf("dialled %s", r.URL)
		}
		create, err := readJSON(ctx, c)
		if err != nil {
			t.Error(err)
			return
		}
		settings, _ := create["settings"].(map[string]any)
		if create["type"] != "session.create" || create["model"] != DefaultSTTModel || settings["sample_rate"] != "16000" ||
			settings["encoding"] != "pcm_s16le" || settings["language"] != "en" {
			t.Errorf("session.create %v", create)
		}
		sendJSON(ctx, c, map[string]any{"type": "session.created", "session_id": "s1"})
		for {
			m, err := readJSON(ctx, c)
			if err != nil {
				return
			}
			switch m["type"] {
			case "input_audio":
				pcm, err := base64.StdEncoding.DecodeString(m["audio"].(string))
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				chunks = append(chunks, pcm)
				if len(chunks) == 1 {
					sendJSON(ctx, c, map[string]any{"type": "start_of_speech"})
					sendJSON(ctx, c, map[string]any{"type": "interim_transcript", "transcript": "hel", "language": "en"})
				}
				mu.Unlock()
			case "session.finalize":
				sendJSON(ctx, c, map[string]any{"type": "final_transcript", "transcript": "hello \x1b[31mworld", "language": "en",
					"start": 0.25, "duration": 1.5, "confidence": 0.97, "words": []any{}})
				sendJSON(ctx, c, map[string]any{"type": "session.finalized"})
			default:
				t.Errorf("unexpected message %v", m)
			}
		}
	}))
	s, err := newSTT(t, cfg).Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sent := ramp(16000 + 300) // 1 s and a partial chunk
	for i := 0; i < len(sent); i += 320 {
		if err := s.Write(sent[i:min(i+320, len(sent))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	var events []provider.STTEvent
	for {
		ev, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
		if ev.Type == provider.Finalized {
			break
		}
	}
	want := []provider.STTEventType{provider.SpeechStarted, provider.InterimTranscript, provider.FinalTranscript, provider.Finalized}
	if len(events) != len(want) {
		t.Fatalf("events %+v", events)
	}
	for i, ev := range events {
		if ev.Type != want[i] {
			t.Fatalf("event %d is %v, want %v", i, ev.Type, want[i])
		}
	}
	final := events[2]
	if final.Text != "hello world" || final.Confidence != 0.97 || final.Start.Seconds() != 0.25 || final.Duration.Seconds() != 1.5 {
		t.Fatalf("final %+v (escape sequences must be stripped)", final)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(chunks) != 21 {
		t.Fatalf("%d chunks, want 20 of 50 ms and the partial one", len(chunks))
	}
	var got []int16
	for i, c := range chunks {
		if i < 20 && len(c) != ChunkSamples*2 {
			t.Fatalf("chunk %d has %d bytes, want %d", i, len(c), ChunkSamples*2)
		}
		for j := 0; j+1 < len(c); j += 2 {
			got = append(got, int16(binary.LittleEndian.Uint16(c[j:])))
		}
	}
	if len(got) != len(sent) {
		t.Fatalf("server got %d samples, sent %d", len(got), len(sent))
	}
	for i := range got {
		if got[i] != sent[i] {
			t.Fatalf("sample %d differs", i)
		}
	}
}

// refuseHandshake answers the WebSocket request with an HTTP error.
func refuseHandshake(hits *pipelinetest.Counter, status int, body func(n int) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add()
		if b := body(n); b != "" {
			pipelinetest.Refuse(w, status, b)
			return
		}
		w.WriteHeader(http.StatusTeapot) // the test said "accept" but this handler cannot
	})
}

func TestSTTHandshakeRefusals(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		body      string
		category  string
		terminal  bool
		attempts  int
		quotaType string
	}{
		{"credits", 429, pipelinetest.QuotaBody("stt", "MaxGatewayCredits"), "MaxGatewayCredits", true, 1, "stt"},
		// GATEWAY_PROTOCOL.md's example, verbatim: no quota_type field.
		{"connection limit", 429, `{"type":"inference_quota_exceeded","error":"STT connection limit exceeded, category: MaxConcurrentGatewaySTT","category":"MaxConcurrentGatewaySTT","current_usage":"55","remaining_limit":"0","status":"QuotaStatusExceeded"}`, "MaxConcurrentGatewaySTT", false, 1 + provider.DefaultRetries, "stt"},
		// Over the 1 KiB the WebSocket library keeps: still typed whole.
		{"long hint", 429, strings.Replace(pipelinetest.QuotaBody("stt", "MaxGatewayCredits"), `"hint":"`, `"hint":"`+strings.Repeat("Upgrade. ", 400), 1), "MaxGatewayCredits", true, 1, "stt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := fakeGateway(t, refuseHandshake(&hits, c.status, func(int) string { return c.body }))
			_, err := newSTT(t, cfg).Stream(context.Background())
			q, ok := provider.AsQuota(err)
			if !ok {
				t.Fatalf("got %T %v, want a QuotaError", err, err)
			}
			if q.QuotaType != c.quotaType || q.Category != c.category || provider.Terminal(err) != c.terminal || provider.Retryable(err) == c.terminal {
				t.Fatalf("got %+v terminal=%v", q, provider.Terminal(err))
			}
			if q.ErrStage() != provider.StageSTT || hits.Load() != c.attempts {
				t.Fatalf("stage %v, %d attempts, want %d", q.ErrStage(), hits.Load(), c.attempts)
			}
		})
	}
	t.Run("bad credentials", func(t *testing.T) {
		cfg := fakeGateway(t, http.NotFoundHandler())
		cfg.APISecret = "not-the-secret"
		_, err := newSTT(t, cfg).Stream(context.Background())
		se, ok := provider.AsStatus(err)
		if !ok || se.StatusCode != 401 || !provider.Terminal(err) || se.Stage != provider.StageSTT {
			t.Fatalf("got %v", err)
		}
		noSecrets(t, err.Error(), "not-the-secret")
	})
	t.Run("oversized body", func(t *testing.T) {
		var hits pipelinetest.Counter
		cfg := fakeGateway(t, refuseHandshake(&hits, 503, func(int) string { return strings.Repeat("busy ", 100_000) }))
		cfg.Retry.Max = -1
		_, err := newSTT(t, cfg).Stream(context.Background())
		se, ok := provider.AsStatus(err)
		if !ok || se.StatusCode != 503 || len(se.Body) != provider.MaxBody || !provider.Retryable(err) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("rate limit then recovery", func(t *testing.T) {
		var hits pipelinetest.Counter
		inner := refuseHandshake(&hits, 429, func(n int) string { return pipelinetest.QuotaBody("stt", "MaxConcurrentGatewaySTT") })
		cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hits.Load() < 2 {
				inner.ServeHTTP(w, r)
				return
			}
			hits.Add()
			wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) { readJSON(ctx, c); drain(ctx, c) }).ServeHTTP(w, r)
		}))
		s, err := newSTT(t, cfg).Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		if hits.Load() != 3 {
			t.Fatalf("%d attempts, want 3", hits.Load())
		}
	})
}

func TestSTTGatewayErrorAndClose(t *testing.T) {
	t.Run("error message", func(t *testing.T) {
		cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			readJSON(ctx, c)
			sendJSON(ctx, c, map[string]any{"type": "error", "message": "provider deepgram failed", "code": 500})
			drain(ctx, c)
		}))
		s, err := newSTT(t, cfg).Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Recv()
		var se *provider.ServerError
		if !errors.As(err, &se) || se.Message != "provider deepgram failed" || se.Code != "500" || se.Stage != provider.StageSTT {
			t.Fatalf("got %#v", err)
		}
	})
	t.Run("closed unexpectedly", func(t *testing.T) {
		cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			readJSON(ctx, c)
			c.Close(websocket.StatusNormalClosure, "bye")
		}))
		s, err := newSTT(t, cfg).Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		_, err = s.Recv()
		var ce *provider.ConnectionError
		if !errors.As(err, &ce) || !provider.Retryable(err) || !strings.Contains(err.Error(), "closed unexpectedly") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("our close ends Recv with EOF", func(t *testing.T) {
		cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			drain(ctx, c)
		}))
		s, err := newSTT(t, cfg).Stream(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { _, err := s.Recv(); done <- err }()
		s.Close()
		if err := <-done; err != io.EOF {
			t.Fatalf("Recv after Close: %v", err)
		}
		if err := s.Write(make([]int16, ChunkSamples)); err == nil {
			t.Fatal("Write after Close succeeded")
		}
	})
}

func TestDecodeSTTOddMessages(t *testing.T) {
	for _, msg := range []string{
		`{"type":"final_transcript","transcript":["a"],"start":"x","confidence":null}`,
		`{"type":"interim_transcript"}`,
		`{"type":"output_alignment"}`,
		`{"type":"session.created","session_id":5}`,
	} {
		ev, _, err := DecodeSTT([]byte(msg))
		if err != nil || ev.Text != "" || ev.Start != 0 {
			t.Errorf("%s: %+v %v", msg, ev, err)
		}
	}
	for _, msg := range []string{`not json`, `{"type":5}`, `[]`, ``} {
		_, _, err := DecodeSTT([]byte(msg))
		var pe *provider.ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("%q: %v, want a ProtocolError", msg, err)
		}
	}
}

func FuzzDecodeSTT(f *testing.F) {
	for _, s := range []string{
		`{"type":"final_transcript","transcript":"hi","start":0.1,"duration":1,"confidence":0.9,"words":[]}`,
		`{"type":"error","message":"x","code":"y"}`,
		pipelinetest.QuotaBody("stt", "MaxGatewayCredits"),
		`{"type":"start_of_speech"}`, `{"type":"session.closed"}`, `{"type":"interim_transcript","transcript":"\u001b[2J"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, ok, err := DecodeSTT(data)
		if err != nil {
			var c provider.Classified
			if !errors.As(err, &c) || c.ErrStage() != provider.StageSTT {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		if !ok {
			return
		}
		if strings.ContainsAny(ev.Text, "\x1b\n\r") || len([]rune(ev.Text)) > 2001 {
			t.Fatalf("unsanitized transcript %q", ev.Text)
		}
	})
}
