package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/pipeline"
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
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"invalid access token"}`))
			return
		}
		if r.Header.Get("User-Agent") != UserAgent {
			t.Errorf("User-Agent %q", r.Header.Get("User-Agent"))
		}
		http.StripPrefix("/v1", handler).ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	cfg := ConfigFromEnv(func(string) string { return "" })
	cfg.URL = srv.URL + "/v1"
	cfg.APIKey, cfg.APISecret = testKey, testSecret
	cfg.Retry = pipeline.Retry{First: time.Millisecond, Interval: time.Millisecond, Timeout: 2 * time.Second}
	return cfg
}

func ioNopCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }
