package openai

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// Wire conformance: the exact bytes of every request this backend sends,
// checked against the OpenAI API's documented schema (strict: case-
// sensitive, unknown fields refused; the test server in server() does the
// same for every other test) and kept as golden files (go test -update).

// capture records the bodies a server received.
type capture struct {
	mu     sync.Mutex
	bodies [][]byte
}

func (c *capture) add(b []byte) {
	c.mu.Lock()
	c.bodies = append(c.bodies, b)
	c.mu.Unlock()
}

func (c *capture) only(t *testing.T) []byte {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bodies) != 1 {
		t.Fatalf("%d requests, want 1", len(c.bodies))
	}
	return c.bodies[0]
}

func TestWireChatRequest(t *testing.T) {
	var got capture
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.add(b)
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("data: [DONE]\n\n"))
	})
	c, err := NewChat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Chat(context.Background(), []provider.Message{
		{Role: "system", Content: "You are brief."},
		{Role: "user", Content: "Say \"hi\" — in French?"},
		{Role: "assistant", Content: "Salut."},
		{Role: "user", Content: "Thanks"},
	})
	if err == nil {
		s.Close()
	}
	body := got.only(t)
	if err := wire.Check(wire.ChatRequest, body); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, body)
}

func TestWireChatRefusesAnUnknownRole(t *testing.T) {
	c, err := NewChat(Config{BaseURL: "http://127.0.0.1:1/v1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat(context.Background(), []provider.Message{{Role: "User", Content: "hi"}}); err == nil {
		t.Fatal("a message with role \"User\" was sent")
	}
}

func TestWireSpeechRequest(t *testing.T) {
	var got capture
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.add(b)
		w.Write([]byte{0, 0})
	})
	sp, err := NewSpeech(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := sp.Synthesize(context.Background())
	defer u.Close()
	u.Push("Hello there.")
	u.Flush()
	for {
		if _, err := u.Recv(); err != nil {
			break
		}
	}
	body := got.only(t)
	if err := wire.Check(wire.SpeechRequest, body); err != nil {
		t.Fatal(err)
	}
	golden.RequireEqual(t, body)
}

func TestWireTranscriptionForm(t *testing.T) {
	var got capture
	var fileType string
	cfg := server(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseMultipartForm(10 << 20); err != nil {
			t.Error(err)
			return
		}
		form := wire.Form(r.MultipartForm)
		if err := wire.CheckValue(wire.TranscriptionForm, form); err != nil {
			t.Error(err)
		}
		b, _ := json.MarshalIndent(form, "", "  ") // keys sorted: stable
		got.add(b)
		if fh := r.MultipartForm.File["file"]; len(fh) == 1 {
			fileType = fh[0].Header.Get("Content-Type")
		}
		w.Write([]byte(`{"text":"hello"}`))
	})
	cfg.Language = "en"
	tr, _ := NewTranscriber(cfg)
	s, _ := tr.Stream(context.Background())
	defer s.Close()
	s.Write(make([]int16, 1600))
	s.Finalize()
	if ev, err := s.Recv(); err != nil || ev.Text != "hello" {
		t.Fatalf("%+v %v", ev, err)
	}
	golden.RequireEqual(t, got.only(t))
	if fileType != "audio/wav" {
		t.Errorf("file part Content-Type %q", fileType)
	}
}

func TestChatChunkIsReadByExactName(t *testing.T) {
	got, err := chatEvents([]byte("data: {\"choices\":[{\"Delta\":{\"Content\":\"no\"}},{\"delta\":{\"Content\":\"no\"}},{\"delta\":{\"content\":\"yes\"}}]}\n\ndata: [DONE]\n\n"))
	if got != "yes" || err != nil {
		t.Fatalf("%q %v", got, err)
	}
}
