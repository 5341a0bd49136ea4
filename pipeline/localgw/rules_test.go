package localgw

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestParseRules(t *testing.T) {
	good := map[string]string{
		"llm:credits": "llm:credits", "tts:credits:after=3": "tts:credits:after=3", "llm:rate:count=2": "llm:rate:count=2",
		"stt:unknown": "stt:unknown", "llm:malformed": "llm:malformed", "bargein:credits": "bargein:credits",
		" stt:rate:after=1:count=2 ": "stt:rate:after=1:count=2",
	}
	for in, want := range good {
		r, err := ParseQuota(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseQuota(%q) = %v, %v", in, r, err)
		}
	}
	for _, in := range []string{"", "llm", "gpu:credits", "llm:free", "llm:credits:after=-1", "llm:rate:count=0", "llm:rate:every=2", "llm:rate:count=x"} {
		if _, err := ParseQuota(in); err == nil {
			t.Errorf("ParseQuota(%q) accepted", in)
		}
	}
	faults := map[string]string{
		"llm:delay=800ms": "llm:delay=800ms", "tts:stall": "tts:stall", "llm:5xx:count=1": "llm:5xx:count=1",
		"stt:disconnect": "stt:disconnect", "tts:malformed:after=2": "tts:malformed:after=2", "stt:delay=1s": "stt:delay=1s",
	}
	for in, want := range faults {
		r, err := ParseFault(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseFault(%q) = %v, %v", in, r, err)
		}
	}
	for _, in := range []string{"llm:delay", "llm:delay=-1s", "llm:delay=2m", "llm:5xx=3", "stt:stall", "bargein:5xx", "llm:slow"} {
		if _, err := ParseFault(in); err == nil {
			t.Errorf("ParseFault(%q) accepted", in)
		}
	}
}

func TestPolicyWindows(t *testing.T) {
	var p Policy
	mustQuota := func(s string) QuotaRule {
		r, err := ParseQuota(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	p.AddQuota(mustQuota("tts:credits:after=2"))
	p.AddQuota(mustQuota("llm:rate:after=1:count=2"))
	var llm, tts []bool
	for range 5 {
		r, _ := p.Admit(LLM)
		llm = append(llm, r != nil)
		r, _ = p.Admit(TTS)
		tts = append(tts, r != nil)
	}
	if want := []bool{false, true, true, false, false}; !slices.Equal(llm, want) {
		t.Errorf("llm:rate:after=1:count=2 refused %v, want %v", llm, want)
	}
	if want := []bool{false, false, true, true, true}; !slices.Equal(tts, want) {
		t.Errorf("tts:credits:after=2 refused %v, want %v", tts, want)
	}
	if q, _ := p.Rules(); len(q) != 1 || q[0] != "tts:credits:after=2" {
		t.Errorf("spent rules stay: %v", q)
	}
	if p.Blocked(TTS) == nil || p.Blocked(LLM) != nil {
		t.Error("Blocked disagrees with the rules")
	}
	p.Reset()
	if r, _ := p.Admit(TTS); r != nil {
		t.Error("Reset kept a rule")
	}
}

func TestRefusalBodies(t *testing.T) {
	cases := []struct {
		rule, category string
		retryAfter     bool
	}{
		{"llm:credits", "MaxGatewayCredits", false},
		{"bargein:credits", "MaxBargeInRequests", false},
		{"llm:rate", "MaxConcurrentGatewayLLMRpm", true},
		{"stt:rate", "MaxConcurrentGatewaySTT", true},
		{"tts:unknown", "MaxGatewayFutureLimit", false},
	}
	for _, c := range cases {
		r, _ := ParseQuota(c.rule)
		ref := r.refusal()
		var body map[string]any
		if err := json.Unmarshal(ref.Body, &body); err != nil {
			t.Fatal(err)
		}
		if ref.Status != 429 || body["type"] != "inference_quota_exceeded" || body["category"] != c.category ||
			body["quota_type"] != string(r.Stage) || body["remaining_limit"] != "0" || body["hint"] == "" || body["error"] == "" {
			t.Errorf("%s: %d %v", c.rule, ref.Status, body)
		}
		if (ref.Header.Get("Retry-After") != "") != c.retryAfter {
			t.Errorf("%s: Retry-After %q", c.rule, ref.Header.Get("Retry-After"))
		}
	}
	r, _ := ParseQuota("llm:malformed")
	var body map[string]any
	json.Unmarshal(r.refusal().Body, &body)
	if _, isList := body["category"].([]any); !isList {
		t.Errorf("malformed category %v", body["category"])
	}
	if _, isNumber := body["remaining_limit"].(float64); !isNumber {
		t.Errorf("malformed remaining_limit %v", body["remaining_limit"])
	}
}

func TestControlEndpointLoopbackOnly(t *testing.T) {
	s, err := New(Options{Speech: silentSpeech{}})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	req := httptest.NewRequest("POST", "/control/quota?rule=llm:credits", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusForbidden {
		t.Fatalf("remote client: %d", w.Code)
	}
	if q, _ := s.Policy().Rules(); len(q) != 0 {
		t.Fatal("a remote client changed the rules")
	}
}

func TestControlEndpoint(t *testing.T) {
	s, cfg := start(t, Options{Speech: silentSpeech{}})
	post := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", s.ControlURL()+path, nil)
		req.Header.Set(ControlHeader, s.ControlToken())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := post("/quota?rule=llm:credits"); code != 200 || len(m["quotas"].([]any)) != 1 {
		t.Fatalf("%d %v", code, m)
	}
	if _, err := ask(t, cfg, "hi"); err == nil || !strings.Contains(err.Error(), "MaxGatewayCredits") {
		t.Fatalf("after exhausting credits: %v", err)
	}
	if code, m := post("/quota?rule=llm:everything"); code != 400 || !strings.Contains(m["error"].(string), "kind") {
		t.Fatalf("bad rule: %d %v", code, m)
	}
	if code, _ := post("/fault?rule=llm:delay=1ms"); code != 200 {
		t.Fatal(code)
	}
	if code, m := post("/reset"); code != 200 || len(m["quotas"].([]any)) != 0 || len(m["faults"].([]any)) != 0 {
		t.Fatalf("%d %v", code, m)
	}
	if _, err := ask(t, cfg, "hi"); err != nil {
		t.Fatalf("after reset: %v", err)
	}
}

// A web page cannot add rules to a running gateway: without the token
// header, with a wrong one, or with an Origin (what a browser sends), the
// control endpoint refuses, and says so in its journal.
func TestControlEndpointRefusesForgeries(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}, ControlToken: "t0ken"})
	for name, h := range map[string]http.Header{
		"no token":    {},
		"wrong token": {ControlHeader: {"guess"}},
		"from a page": {ControlHeader: {"t0ken"}, "Origin": {"http://evil.example"}},
	} {
		req, _ := http.NewRequest("POST", s.ControlURL()+"/quota?rule=llm:credits", nil)
		req.Header = h
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Header)
		}
	}
	if q, _ := s.Policy().Rules(); len(q) != 0 {
		t.Fatalf("a forged request added %v", q)
	}
	var refused int
	for _, a := range s.journal.recent() {
		if a.Stage == "control" && a.Status == http.StatusForbidden {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("journal: %+v", s.journal.recent())
	}
}

// /control/status says, per request, what the gateway answered and why.
func TestStatusShowsWhatWasAnswered(t *testing.T) {
	s, cfg := start(t, Options{Speech: silentSpeech{}, Quotas: quotas(t, "llm:credits:after=1")})
	ask(t, cfg, "hi")
	ask(t, cfg, "hi")
	req, _ := http.NewRequest("GET", s.ControlURL()+"/status", nil)
	req.Header.Set(ControlHeader, s.ControlToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var status struct {
		Recent []Answer `json:"recent"`
	}
	json.NewDecoder(resp.Body).Decode(&status)
	if len(status.Recent) != 2 || status.Recent[0].Status != 200 || status.Recent[0].Why != "served" ||
		status.Recent[1].Status != 429 || status.Recent[1].Why != "quota rule llm:credits:after=1" ||
		!strings.HasPrefix(status.Recent[1].Client["user-agent"], "voicetui/") {
		t.Fatalf("recent %+v", status.Recent)
	}
}

// silentSpeech stands in for espeak-ng where speech is beside the point.
type silentSpeech struct{}

func (silentSpeech) Rate() int                       { return 16000 }
func (silentSpeech) Voice(voice, lang string) string { return "silent" }
func (silentSpeech) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	return emit(make([]int16, 1600*len(strings.Fields(text))))
}
