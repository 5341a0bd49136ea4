package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// Wire conformance: every message this backend sends, as bytes, checked
// against the LiveKit Inference protocol's schema (GATEWAY_PROTOCOL.md and
// agents-js's own message shapes; strict: case-sensitive, unknown fields
// refused) and kept as golden files (go test -update). The fake gateway of
// every other test checks the same schemas.

// wireLog records what a client put on the wire, in order.
type wireLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *wireLog) add(format string, args ...any) {
	l.mu.Lock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *wireLog) text() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return []byte(strings.Join(l.lines, "\n") + "\n")
}

// requestLine is what a request says besides its body: method, path and
// query, and the headers the gateway reads (the token's payload with its
// times replaced, since they change every run).
func requestLine(t *testing.T, r *http.Request) string {
	t.Helper()
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		t.Fatal("no bearer token")
	}
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := wire.Check(wire.AccessToken, payload); err != nil {
		t.Errorf("token payload %s: %v", payload, err)
	}
	var claims map[string]any
	json.Unmarshal(payload, &claims)
	nbf, _ := claims["nbf"].(float64)
	exp, _ := claims["exp"].(float64)
	if exp-nbf != TokenTTL.Seconds() || time.Since(time.Unix(int64(nbf), 0)).Abs() > time.Minute {
		t.Errorf("token valid from %v for %v s", nbf, exp-nbf)
	}
	claims["nbf"], claims["exp"] = "now", "now+600"
	c, _ := json.Marshal(claims) // keys sorted
	var names []string
	for k := range r.Header {
		switch k {
		case "Authorization", "User-Agent", "Content-Type", "Accept":
			names = append(names, fmt.Sprintf("%s: %s", k, r.Header.Get(k)))
		default:
			if strings.HasPrefix(k, "X-Livekit-") {
				names = append(names, fmt.Sprintf("%s: %s", k, r.Header.Get(k)))
			}
		}
	}
	slices.Sort(names)
	for i, n := range names {
		if strings.HasPrefix(n, "Authorization:") {
			names[i] = "Authorization: Bearer <jwt>"
		}
	}
	return fmt.Sprintf("%s %s\njwt header %s\njwt claims %s\n%s", r.Method, r.URL.RequestURI(), header, c, strings.Join(names, "\n"))
}

func TestWireLLMRequest(t *testing.T) {
	var log wireLog
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		log.add("%s\nbody %s", requestLine(t, r), body)
		if err := wire.Check(wire.ChatRequest, body); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: [DONE]\n\n"))
	}))
	cfg.Priority, cfg.Provider = "low", "openai"
	l := newLLM(t, cfg)
	if s, err := l.Chat(context.Background(), []provider.Message{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "hello"}}); err == nil {
		s.Close()
	}
	golden.RequireEqual(t, log.text())
}

func TestWireSTTMessages(t *testing.T) {
	var log wireLog
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add("%s", requestLine(t, r))
		wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				conform(ctx, data)
				var m map[string]any
				json.Unmarshal(data, &m)
				if m["type"] == "input_audio" {
					pcm, _ := base64.StdEncoding.DecodeString(m["audio"].(string))
					log.add(`input_audio of %d bytes: {"type":"input_audio","audio":"<base64>"} == %t`, len(pcm),
						bytes.Equal(data, []byte(`{"type":"input_audio","audio":"`+m["audio"].(string)+`"}`)))
					continue
				}
				log.add("%s", data)
				if m["type"] == "session.finalize" {
					sendJSON(ctx, c, map[string]any{"type": "session.finalized"})
				}
			}
		}).ServeHTTP(w, r)
	}))
	s, err := newSTT(t, cfg).Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.Write(make([]int16, ChunkSamples+10)) // a whole chunk, and a part sent by Finalize
	s.Finalize()
	if ev, err := s.Recv(); err != nil || ev.Type != provider.Finalized {
		t.Fatalf("%+v %v", ev, err)
	}
	s.Close()
	golden.RequireEqual(t, log.text())
}

func TestWireTTSMessages(t *testing.T) {
	var log wireLog
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.add("%s", requestLine(t, r))
		wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			for {
				_, data, err := c.Read(ctx)
				if err != nil {
					return
				}
				conform(ctx, data)
				log.add("%s", data)
				if bytes.Contains(data, []byte(`"session.flush"`)) {
					sendJSON(ctx, c, pcmMessage([]int16{1, 2}))
					sendJSON(ctx, c, map[string]any{"type": "done", "session_id": "s1"})
				}
			}
		}).ServeHTTP(w, r)
	}))
	cfg.Voice = "alloy"
	if _, err := speak(t, newTTS(t, cfg), "Hello \"there\".", "Bye."); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, log.text())
}

// A client reads fields by their exact names too: a server that sends
// "Transcript" or "Audio" is not understood, so our tests cannot pass on
// a server (our embedded gateway included) that gets the names wrong.
func TestDecodeIsCaseSensitive(t *testing.T) {
	if ev, ok, err := DecodeSTT([]byte(`{"Type":"final_transcript","Transcript":"hi"}`)); ok || err != nil {
		t.Errorf("STT message with capitalised names read as %+v %v", ev, err)
	}
	if ev, ok, err := DecodeSTT([]byte(`{"type":"final_transcript","Transcript":"hi"}`)); !ok || err != nil || ev.Text != "" {
		t.Errorf("STT transcript under \"Transcript\" read as %+v %v", ev, err)
	}
	if _, _, err := DecodeTTS([]byte(`{"type":"output_audio","Audio":"AAA="}`), nil); err == nil {
		t.Error("TTS audio under \"Audio\" was taken")
	}
	if kind, _, err := DecodeTTS([]byte(`{"Type":"done"}`), nil); kind == ttsDone || err != nil {
		t.Errorf("\"Type\":\"done\" read as %v %v", kind, err)
	}
}
