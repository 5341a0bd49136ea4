package provider

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
)

// respond serves one response from a real HTTP server and types it
// through ReadResponse, the path the provider clients take.
func respond(t *testing.T, status int, headers map[string]string, body string) error {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		io := strings.NewReader(body)
		io.WriteTo(w)
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return ReadResponse(StageLLM, resp)
}

const creditsBody = `{"type": "inference_quota_exceeded",
 "error": "LLM token credit quota exceeded, category: MaxGatewayCredits, remaining_limit: 0",
 "hint": "Wait for the next billing cycle or upgrade your plan.",
 "quota_type": "llm", "category": "MaxGatewayCredits", "remaining_limit": "0",
 "free_tier": "false", "documentation_url": "https://livekit.com/pricing"}`

func quotaBody(category string) string {
	return fmt.Sprintf(`{"type":"inference_quota_exceeded","error":"limit reached, category: %[1]s","hint":"LLM request rate limit reached. Reduce request rate or upgrade your plan.","quota_type":"llm","category":%[1]q,"remaining_limit":"0"}`, category)
}

func TestQuotaClassification(t *testing.T) {
	cases := []struct {
		name                string
		status              int
		body                string
		terminal, retryable bool
		category, hint      string
		quotaType           string
		remaining           string
	}{
		{"credits", 429, creditsBody, true, false, "MaxGatewayCredits", "Wait for the next billing cycle or upgrade your plan.", "llm", "0"},
		{"barge-in credits", 429, quotaBody("MaxBargeInRequests"), true, false, "MaxBargeInRequests", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"eot credits", 429, quotaBody("MaxEotRequests"), true, false, "MaxEotRequests", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"llm rpm", 429, quotaBody("MaxConcurrentGatewayLLMRpm"), false, true, "MaxConcurrentGatewayLLMRpm", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"llm tpm", 429, quotaBody("MaxConcurrentGatewayLLMTpm"), false, true, "MaxConcurrentGatewayLLMTpm", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"stt concurrency", 429, quotaBody("MaxConcurrentGatewaySTT"), false, true, "MaxConcurrentGatewaySTT", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"future category", 429, quotaBody("MaxSomethingNew"), false, true, "MaxSomethingNew", "LLM request rate limit reached. Reduce request rate or upgrade your plan.", "llm", "0"},
		{"missing category", 429, `{"type":"inference_quota_exceeded","quota_type":"tts"}`, false, true, "", "", "tts", ""},
		{"list category", 429, `{"type":"inference_quota_exceeded","category":["MaxGatewayCredits"],"remaining_limit":0,"hint":{"x":1},"quota_type":7}`, false, true, "", "", "llm", ""},
		{"numeric remaining", 429, `{"type":"inference_quota_exceeded","category":"MaxConcurrentGatewayLLMRpm","remaining_limit":0}`, false, true, "MaxConcurrentGatewayLLMRpm", "", "llm", ""},
		{"openai insufficient_quota", 429, `{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","code":"insufficient_quota"}}`, true, false, "insufficient_quota", "", "llm", ""},
		{"openai billing limit", 429, `{"error":{"message":"Billing hard limit has been reached","type":"invalid_request_error","code":"billing_hard_limit_reached"}}`, true, false, "billing_hard_limit_reached", "", "llm", ""},
		{"openai rate limit", 429, `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`, false, true, "rate_limit_exceeded", "", "llm", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := respond(t, tc.status, nil, tc.body)
			var q *QuotaError
			if !errors.As(err, &q) {
				t.Fatalf("got %T %v, want a *QuotaError", err, err)
			}
			if Terminal(err) != tc.terminal || Retryable(err) != tc.retryable {
				t.Errorf("terminal %v retryable %v, want %v %v", Terminal(err), Retryable(err), tc.terminal, tc.retryable)
			}
			if q.Category != tc.category || q.Hint != tc.hint || q.QuotaType != tc.quotaType || q.RemainingLimit != tc.remaining {
				t.Errorf("fields %q %q %q %q, want %q %q %q %q", q.Category, q.Hint, q.QuotaType, q.RemainingLimit,
					tc.category, tc.hint, tc.quotaType, tc.remaining)
			}
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status || se.Stage != StageLLM {
				t.Errorf("the quota error must wrap its *StatusError: %v", se)
			}
		})
	}
}

func TestStatusRules(t *testing.T) {
	cases := []struct {
		status              int
		body                string
		terminal, retryable bool
	}{
		{400, `{"error":{"message":"bad model"}}`, false, false},
		{401, `{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}`, true, false},
		{403, `forbidden`, true, false},
		{404, ``, false, false},
		{408, ``, false, true},
		{422, `{}`, false, false},
		{429, `{"error":"LLM token credit quota exceeded"}`, false, true}, // bare string, no type: a plain 429
		{499, ``, false, true},
		{500, `<html>oops</html>`, false, true},
		{503, ``, false, true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			err := respond(t, tc.status, nil, tc.body)
			var se *StatusError
			if !errors.As(err, &se) || se.StatusCode != tc.status {
				t.Fatalf("got %T %v", err, err)
			}
			if Terminal(err) != tc.terminal || Retryable(err) != tc.retryable {
				t.Errorf("terminal %v retryable %v, want %v %v", Terminal(err), Retryable(err), tc.terminal, tc.retryable)
			}
		})
	}
}

func TestHeadersAndMessage(t *testing.T) {
	err := respond(t, 429, map[string]string{
		"X-LiveKit-Inference-RPM-Limit": "60", "X-LiveKit-Inference-RPM-Used": "60",
		"X-LiveKit-Inference-Credits-Used": "1000",
		"Retry-After":                      "2", "X-Request-Id": "req_123",
	}, quotaBody("MaxConcurrentGatewayLLMRpm"))
	var se *StatusError
	errors.As(err, &se)
	want := Usage{RPMLimit: "60", RPMUsed: "60", CreditsUsed: "1000"}
	if se.Usage != want {
		t.Errorf("usage %+v, want %+v (absent headers stay unknown)", se.Usage, want)
	}
	if se.RetryAfter != 2*time.Second || se.RequestID != "req_123" {
		t.Errorf("retry-after %v request id %q", se.RetryAfter, se.RequestID)
	}
	if msg := err.Error(); !strings.Contains(msg, "llm: rate limited (MaxConcurrentGatewayLLMRpm)") {
		t.Errorf("message %q", msg)
	}
}

func TestWrappedErrorsStillClassify(t *testing.T) {
	err := fmt.Errorf("turn 3: %w", respond(t, 429, nil, creditsBody))
	if !Terminal(err) || Retryable(err) {
		t.Fatal("classification lost through wrapping")
	}
	if Terminal(errors.New("plain")) || Retryable(errors.New("plain")) {
		t.Fatal("an unclassified error is neither")
	}
	if !Retryable(&ConnectionError{Stage: StageTTS, Op: "dial", Err: errors.New("refused")}) ||
		!Retryable(&TimeoutError{Stage: StageSTT, After: 10 * time.Second}) {
		t.Fatal("connection and timeout errors are retryable")
	}
}

func TestHostileBody(t *testing.T) {
	hostile := `{"type":"inference_quota_exceeded","category":"MaxGatewayCredits",` +
		`"hint":"\u001b[2J\u001b]0;pwned\u0007Upgrade\u001b[31m now\r\n\u0000please","error":"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJkZXZrZXkifQ.c2lnbmF0dXJl leaked"}`
	err := respond(t, 429, nil, hostile)
	var q *QuotaError
	if !errors.As(err, &q) {
		t.Fatal(err)
	}
	if q.Hint != "Upgrade now please" {
		t.Errorf("hint %q, want the escape sequences and controls gone", q.Hint)
	}
	if strings.Contains(err.Error(), "eyJ") || strings.Contains(err.Error(), "Bearer e") {
		t.Errorf("credential in message: %q", err.Error())
	}
	huge := `{"type":"inference_quota_exceeded","category":"MaxGatewayCredits","hint":"` + strings.Repeat("x", 200<<10) + `"}`
	err = respond(t, 429, nil, huge)
	var se *StatusError
	errors.As(err, &se)
	if len(se.Body) != MaxBody {
		t.Errorf("kept %d bytes of a 200 KiB body, want the %d cap", len(se.Body), MaxBody)
	}
	// Cut at the cap the JSON no longer parses: still a typed 429.
	if !Retryable(err) || Terminal(err) {
		t.Errorf("capped body: terminal %v retryable %v", Terminal(err), Retryable(err))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, "0.5": 500 * time.Millisecond, "-1": 0, "soon": 0, "1e9": 0,
		now.Add(5 * time.Second).Format(http.TimeFormat): 5 * time.Second,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzFromResponse(f *testing.F) {
	f.Add(429, []byte(creditsBody))
	f.Add(429, []byte(`{"type":"inference_quota_exceeded","category":[1],"remaining_limit":0}`))
	f.Add(401, []byte(`{"error":{"message":"bad","code":"invalid_api_key"}}`))
	f.Add(500, []byte("\x1b[31m<html>"))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := FromResponse(StageTTS, status, http.Header{}, body)
		var c Classified
		if !errors.As(err, &c) {
			t.Fatalf("unclassified %T", err)
		}
		if c.IsTerminal() && c.IsRetryable() {
			t.Fatal("terminal and retryable at once")
		}
		msg := err.Error()
		var q *QuotaError
		if errors.As(err, &q) {
			msg += q.Hint + q.Category + q.QuotaType
		}
		for _, r := range msg {
			if unicode.IsControl(r) {
				t.Fatalf("control character %U reaches the terminal: %q", r, msg)
			}
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	body := []byte(creditsBody)
	h := http.Header{"Retry-After": {"2"}}
	b.ReportAllocs()
	for b.Loop() {
		FromResponse(StageLLM, 429, h, body)
	}
}

func TestRedactsATokenCutByTheLengthLimit(t *testing.T) {
	const token = "sk-straddling0123456789abcdef"
	for cut := 8; cut < len(token); cut++ {
		in := strings.Repeat("a", 100-cut) + " " + token // the limit falls inside the token
		if out := clean(in, 100); strings.Contains(out, token[:8]) {
			t.Fatalf("limit cutting the token after %d bytes shows %q", cut, out)
		}
	}
}
