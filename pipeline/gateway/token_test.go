package gateway

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	tok, err := Token("devkey", "secret", "agent", now)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "secret") {
		t.Fatal("the secret leaked into the token")
	}
	if err := VerifyToken(tok, "devkey", "secret", now.Add(time.Minute)); err != nil {
		t.Fatalf("fresh token refused: %v", err)
	}
	cases := map[string]struct {
		key, secret string
		at          time.Time
	}{
		"wrong secret":  {"devkey", "other", now},
		"wrong key":     {"otherkey", "secret", now},
		"expired":       {"devkey", "secret", now.Add(TokenTTL + time.Minute)},
		"not yet valid": {"devkey", "secret", now.Add(-time.Hour)},
	}
	for name, tc := range cases {
		if err := VerifyToken(tok, tc.key, tc.secret, tc.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := VerifyToken("not.a.token", "devkey", "secret", now); err == nil {
		t.Error("garbage accepted")
	}
}

func TestTokenNeedsCredentials(t *testing.T) {
	if _, err := Token("", "secret", "agent", time.Now()); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("got %v", err)
	}
	if _, err := Token("key", "", "agent", time.Now()); !errors.Is(err, ErrNoCredentials) {
		t.Fatalf("got %v", err)
	}
}
