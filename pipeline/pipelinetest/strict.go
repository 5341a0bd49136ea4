package pipelinetest

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/voicetui/voicetui/pipeline/wire"
)

// Strict checks every request to an OpenAI-compatible endpoint (chat,
// speech, transcription) against its documented schema before next sees
// it, case-sensitively and refusing unknown fields, as the real servers
// do: a test server that decodes leniently would hide a client that sends
// {"Role": ...}. A request that does not conform fails the test and is
// answered 400 with the OpenAI API's error body.
func Strict(t testing.TB, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := CheckRequest(r)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		t.Errorf("%s %s does not conform: %v", r.Method, r.URL.Path, err)
		body := []byte(`{"error":{"message":"bad request","type":"invalid_request_error","param":null,"code":null}}`)
		if we, ok := err.(*wire.Error); ok {
			body = we.OpenAIBody()
		}
		Refuse(w, http.StatusBadRequest, string(body))
	})
}

// CheckRequest checks r's body against the schema of its path, if it has
// one, and leaves the body readable again.
func CheckRequest(r *http.Request) error {
	if r.Method != http.MethodPost {
		return nil
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	switch p := r.URL.Path; {
	case strings.HasSuffix(p, "/chat/completions"):
		return wire.Check(wire.ChatRequest, body)
	case strings.HasSuffix(p, "/audio/speech"):
		return wire.Check(wire.SpeechRequest, body)
	case strings.HasSuffix(p, "/audio/transcriptions"):
		if err := r.ParseMultipartForm(32 << 20); err != nil {
			return err
		}
		err := wire.CheckValue(wire.TranscriptionForm, wire.Form(r.MultipartForm))
		r.Body = io.NopCloser(bytes.NewReader(body))
		return err
	}
	return nil
}
