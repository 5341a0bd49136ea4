package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRedactorHidesSecretsInEveryField(t *testing.T) {
	const secret = "s3cret-value-0123456789"
	r := NewRedactor(secret, "short")
	body := `{"type":"inference_quota_exceeded","error":"bad key ` + secret + `","hint":"your secret is ` + secret + `","category":"MaxGatewayCredits","remaining_limit":"` + secret + `"}`
	err := r.Error(FromResponse(StageLLM, 429, nil, []byte(body)))
	q, ok := AsQuota(err)
	if !ok || !Terminal(err) || q.ErrStage() != StageLLM {
		t.Fatalf("lost its type: %#v", err)
	}
	for _, s := range []string{err.Error(), q.Hint, q.RemainingLimit, q.Status.Message, string(q.Status.Body)} {
		if strings.Contains(s, secret) {
			t.Errorf("secret in %q", s)
		}
	}
	wrapped := r.Error(fmt.Errorf("llm: %w", FromResponse(StageLLM, 401, nil, []byte(`{"error":"`+secret+`"}`))))
	se, ok := AsStatus(wrapped)
	if !ok || strings.Contains(se.Message, secret) || strings.Contains(wrapped.Error(), secret) || !Terminal(wrapped) {
		t.Errorf("wrapped: %v / %+v", wrapped, se)
	}
	conn := r.Error(&ConnectionError{Stage: StageSTT, Op: "dial", Err: fmt.Errorf("dial wss://x?token=%s: refused", secret)})
	if strings.Contains(conn.Error(), secret) || !Retryable(conn) {
		t.Errorf("connection error: %v", conn)
	}
	if r.Error(context.Canceled) != context.Canceled || !errors.Is(r.Error(fmt.Errorf("x: %w", context.Canceled)), context.Canceled) {
		t.Error("a cancellation is no longer one")
	}
	// Too short to be told from a word: never hidden.
	if got := r.String("a short word"); got != "a short word" {
		t.Errorf("%q", got)
	}
}

func TestTokenShapesAreRedactedWordsAreNot(t *testing.T) {
	cases := map[string]string{
		"Authorization: Bearer abcdefghijklmnop0123":          "Authorization: [redacted]",
		"token eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl here":       "token [redacted] here",
		"key sk-proj-0123456789abcdef":                        "key [redacted]",
		"GET https://h/v1/stt?model=x&api_key=abc123&lang=en": "GET https://h/v1/stt?model=x&api_key=[redacted]&lang=en",
		"Who is the bearer of the ring?":                      "Who is the bearer of the ring?",
		"Can you keep a secret?":                              "Can you keep a secret?",
		"a monkey=banana and sk-short":                        "a monkey=banana and sk-short",
	}
	for in, want := range cases {
		if got := redactTokens(in); got != want {
			t.Errorf("redactTokens(%q) = %q, want %q", in, got, want)
		}
	}
}

// Scrub is what a client defers at its boundary.
func TestScrub(t *testing.T) {
	r := NewRedactor("another-secret-0123")
	f := func() (err error) {
		defer r.Scrub(&err)
		return &ServerError{Stage: StageTTS, Message: "echo another-secret-0123"}
	}
	var se *ServerError
	if err := f(); !errors.As(err, &se) || strings.Contains(se.Message, "another-secret") {
		t.Fatalf("%v", err)
	}
}
