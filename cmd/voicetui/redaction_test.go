package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redaction hides credentials in what errors say; it never touches the
// conversation. The embedded gateway's local default secret is "secret",
// an ordinary word that must survive.
func TestConversationTextIsNeverRedacted(t *testing.T) {
	const sentence = "Can you keep a secret? Who is the bearer of the ring?"
	input := spokenWAV(t, 500*time.Millisecond, "Can you keep a secret?", 2*time.Second)
	r := runHeadless(t, input, []string{sentence})
	var finals []string
	for _, e := range r.of("transcript") {
		if e["final"] == true {
			finals = append(finals, e["text"].(string))
		}
	}
	if len(finals) != 1 || finals[0] != sentence {
		t.Fatalf("final transcripts %q", finals)
	}
	var replies []string
	for _, e := range r.of("agent_text") {
		if e["final"] == true {
			replies = append(replies, e["text"].(string))
		}
	}
	if len(replies) != 1 || !strings.Contains(replies[0], "You said: "+sentence) {
		t.Fatalf("the demo agent's echo %q; it was sent something else", replies)
	}
	if strings.Contains(r.stdout+r.stderr, "[redacted]") {
		t.Fatalf("something was redacted:\n%s\n%s", r.stdout, r.stderr)
	}
}

// A careless gateway quotes the credentials it was sent in its error
// bodies: neither the configured secret nor the token signed with it
// reaches an event or the terminal.
func TestEchoedSecretIsRedactedInEvents(t *testing.T) {
	const key, secret = "APIechoTest", "a-configured-secret-of-some-length"
	var mu sync.Mutex
	var tokens []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		mu.Lock()
		tokens = append(tokens, strings.TrimPrefix(auth, "Bearer "))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"error":"invalid token ` + auth + ` for key ` + key + ` (expected a signature with ` + secret + `)"}`))
	}))
	defer srv.Close()
	env := append(append([]string{}, noCredentials...), "LIVEKIT_API_KEY="+key, "LIVEKIT_API_SECRET="+secret, "LIVEKIT_INFERENCE_URL="+srv.URL)
	input := spokenWAV(t, 500*time.Millisecond, "Hello there.", 2*time.Second)
	r := voicetuiFor(t, 60*time.Second, env, "--headless", "--input", input, "--output", t.TempDir()+"/out.wav")
	if r.code == 0 || !strings.Contains(r.stdout, `"type":"close"`) || !strings.Contains(r.stdout, `"status":401`) {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	mu.Lock()
	tokens = append([]string(nil), tokens...)
	mu.Unlock()
	if len(tokens) == 0 || tokens[0] == "" {
		t.Fatal("the gateway was sent no token")
	}
	for _, leak := range append([]string{secret}, tokens...) {
		if strings.Contains(r.stdout, leak) || strings.Contains(r.stderr, leak) {
			t.Fatalf("%q reached the output:\n%s\n%s", leak, r.stdout, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "[redacted]") {
		t.Fatalf("the echoed body is not in the error at all, so nothing was proven:\n%s", r.stdout)
	}
}
