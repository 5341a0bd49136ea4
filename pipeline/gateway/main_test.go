package gateway

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey    = "devkey"
	testSecret = "s3cret-do-not-show"
)

// fakeGateway serves handler under /v1 after checking the access token
// the way the real gateway does; a bad token gets 401.
func fakeGateway(t testing.TB, handler http.Handler) Config {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || VerifyToken(tok, testKey, testSecret, time.Now()) != nil {
			// Careless servers echo what they were sent; clients must not show it.
			pipelinetest.Refuse(w, http.StatusUnauthorized, `{"error":"invalid access token: `+r.Header.Get("Authorization")+`"}`)
			return
		}
		if r.Header.Get("User-Agent") != UserAgent {
			t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
		}
		http.StripPrefix("/v1", pipelinetest.Strict(t, handler)).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := ConfigFromEnv(func(string) string { return "" })
	cfg.URL = srv.URL + "/v1"
	cfg.APIKey, cfg.APISecret = testKey, testSecret
	cfg.Retry = provider.Retry{First: time.Millisecond, Interval: time.Millisecond, Timeout: 2 * time.Second}
	return cfg
}

// noSecrets fails the test if msg shows a token or a secret.
func noSecrets(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	if strings.Contains(msg, "eyJ") || strings.Contains(msg, "Bearer") {
		t.Fatalf("a token in %q", msg)
	}
	for _, s := range append(secrets, testSecret) {
		if strings.Contains(msg, s) || strings.Contains(msg, s[:len(s)/2]) {
			t.Fatalf("a secret (or half of one) in %q", msg)
		}
	}
}
