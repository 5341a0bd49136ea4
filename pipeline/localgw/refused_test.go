package localgw

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// Every refusal is told as it is answered, with the body the client got,
// for each stage and a rule set while a socket is open.
func TestRefusalsAreTold(t *testing.T) {
	var mu sync.Mutex
	var told []Refused
	_, cfg := start(t, Options{Quotas: quotas(t, "llm:credits", "stt:rate", "tts:credits"), OnRefused: func(rf Refused) {
		mu.Lock()
		defer mu.Unlock()
		told = append(told, rf)
	}})
	for _, stage := range []Stage{LLM, STT, TTS} {
		if err := request(t, stage, cfg); err == nil {
			t.Fatalf("%s: not refused", stage)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// The client retries the rate limit: each attempt is told; the first
	// of each stage is checked.
	var firsts []Refused
	for _, rf := range told {
		if len(firsts) == 0 || firsts[len(firsts)-1].Stage != rf.Stage {
			firsts = append(firsts, rf)
		}
	}
	if len(firsts) != 3 {
		t.Fatalf("refusals told for %d stages in turn (%d in all)", len(firsts), len(told))
	}
	for i, want := range []struct {
		stage    Stage
		category string
		terminal bool
	}{{LLM, "MaxGatewayCredits", true}, {STT, "MaxConcurrentGatewaySTT", false}, {TTS, "MaxGatewayCredits", true}} {
		rf := firsts[i]
		err := provider.FromResponse(provider.StageLLM, rf.Status, rf.Header, rf.Body)
		q, ok := provider.AsQuota(err)
		if rf.Stage != want.stage || rf.Status != 429 || !ok || q.Category != want.category || provider.Terminal(err) != want.terminal || rf.At.IsZero() {
			t.Errorf("refusal %d: %s %d %s (%v)", i, rf.Stage, rf.Status, rf.Body, err)
		}
	}
}

// A 429 from the upstream is told too, with its body.
func TestUpstreamRefusalIsTold(t *testing.T) {
	var told []Refused
	_, _, cfg, _ := upstreamPair(t, Options{OnRefused: func(rf Refused) { told = append(told, rf) }}, Options{Quotas: quotas(t, "llm:credits")})
	if _, err := ask(t, cfg, "hello"); err == nil {
		t.Fatal("not refused")
	}
	if len(told) != 1 || told[0].Stage != LLM || !bytes.Contains(told[0].Body, []byte(`"category":"MaxGatewayCredits"`)) {
		t.Fatalf("told %+v", told)
	}
}

// The demo agent calls an offered tool the user names, then says what it
// answered.
func TestDemoAgentCallsANamedTool(t *testing.T) {
	_, cfg := start(t, Options{TokenDelay: -1})
	tools := `"tools":[{"type":"function","function":{"name":"lookup_order","parameters":{"type":"object","properties":{"order":{"type":"string"}}}}}]`
	out := chat(t, cfg, `{"model":"m","stream":true,"messages":[{"role":"user","content":"please look up order 427"}],`+tools+`}`)
	if !strings.Contains(out, `"tool_calls":[{"function":{"arguments":"{\"order\":\"427\"}","name":"lookup_order"}`) || !strings.Contains(out, `"finish_reason":"tool_calls"`) {
		t.Fatalf("no tool call:\n%s", out)
	}
	out = chat(t, cfg, `{"model":"m","stream":true,"messages":[{"role":"user","content":"please look up order 427"},`+
		`{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"lookup_order","arguments":"{}"}}]},`+
		`{"role":"tool","tool_call_id":"c1","content":"\"shipped\""}],`+tools+`}`)
	if !strings.Contains(out, "lookup_order ") || !strings.Contains(out, "answered: ") || !strings.Contains(out, "shipped") || strings.Contains(out, `\"shipped`) {
		t.Fatalf("no answer from the tool's output:\n%s", out)
	}
	// Not named: the usual reply.
	out = chat(t, cfg, `{"model":"m","stream":true,"messages":[{"role":"user","content":"hello"}],`+tools+`}`)
	if strings.Contains(out, "tool_calls") {
		t.Fatalf("a tool called unasked:\n%s", out)
	}
}

// chat posts body and returns the SSE stream as text.
func chat(t *testing.T, cfg gateway.Config, body string) string {
	t.Helper()
	if !json.Valid([]byte(body)) {
		t.Fatalf("not JSON: %s", body)
	}
	tok, err := gateway.Token(cfg.APIKey, cfg.APISecret, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", cfg.URL+"/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d: %s", resp.StatusCode, b)
	}
	return string(b)
}
