package localgw

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// upstreamPair is a gateway in front of another (the stand-in for the
// real gateway), and a client of the front one.
func upstreamPair(t *testing.T, front, up Options) (fr, upSrv *Server, cfg gateway.Config, log *bytes.Buffer) {
	t.Helper()
	up.Key, up.Secret = "upkey", "upstream-secret-0123456789"
	upSrv, _ = start(t, up)
	log = &bytes.Buffer{}
	front.Log = slog.New(slog.NewTextHandler(log, nil))
	front.Upstream = &Upstream{URL: upSrv.URL(), Key: up.Key, Secret: up.Secret}
	fr, cfg = start(t, front)
	return fr, upSrv, cfg, log
}

func answers(s *Server, stage string) []Answer {
	var out []Answer
	for _, a := range s.journal.recent() {
		if a.Stage == stage {
			out = append(out, a)
		}
	}
	return out
}

func TestUpstreamPassesThrough(t *testing.T) {
	front, up, cfg, log := upstreamPair(t, Options{Speech: silentSpeech{}}, Options{STTScript: []string{"what time is it"}})
	got, err := ask(t, cfg, "help")
	if err != nil || got != Reply("help", time.Now()) {
		t.Fatalf("%q %v", got, err)
	}
	if a := answers(up, "llm"); len(a) != 1 || a[0].Status != 200 || !strings.HasPrefix(a[0].Client["user-agent"], "voicetui/") {
		t.Fatalf("upstream saw %+v", a)
	}
	if a := answers(front, "llm"); len(a) != 1 || a[0].Why != "passed to the upstream" {
		t.Fatalf("front answered %+v", a)
	}
	if content, err := transcribe(t, cfg); err != nil || !content {
		t.Fatalf("stt through the upstream: %v %v", content, err)
	}
	if a := answers(up, "stt"); len(a) != 1 || a[0].Status != 101 {
		t.Fatalf("upstream stt %+v", a)
	}
	if pcm, err := say(t, newTTS(t, cfg), "Hello there."); err != nil || len(pcm) == 0 {
		t.Fatalf("tts through the upstream: %d samples, %v", len(pcm), err)
	}
	// The upstream's secret and its tokens never reach the front's log.
	for _, leak := range []string{"upstream-secret", "eyJ"} {
		if strings.Contains(log.String(), leak) {
			t.Fatalf("the log shows %q:\n%s", leak, log)
		}
	}
}

func TestUpstreamRulesApplyOnTop(t *testing.T) {
	front, up, cfg, _ := upstreamPair(t, Options{Speech: silentSpeech{}}, Options{Speech: silentSpeech{}})
	if _, err := ask(t, cfg, "hi"); err != nil {
		t.Fatal(err)
	}
	front.Policy().AddQuota(quotas(t, "llm:credits")[0])
	_, err := ask(t, cfg, "hi")
	if q, ok := provider.AsQuota(err); !ok || !q.IsTerminal() || q.Category != "MaxGatewayCredits" {
		t.Fatalf("with credits exhausted on the front: %v", err)
	}
	if a := answers(up, "llm"); len(a) != 1 {
		t.Fatalf("a refused request reached the upstream: %+v", a)
	}
	front.Policy().Reset()
	front.Policy().AddFault(faults(t, "llm:5xx:count=1")[0])
	if _, err := ask(t, cfg, "hi"); err != nil { // retried past the one fault
		t.Fatal(err)
	}
}

// The upstream's own refusal reaches the client as it was, typed.
func TestUpstreamRefusalsPassThrough(t *testing.T) {
	front, _, cfg, _ := upstreamPair(t, Options{Speech: silentSpeech{}}, Options{Speech: silentSpeech{}, Quotas: quotas(t, "tts:credits")})
	_, err := say(t, newTTS(t, cfg), "Hello.")
	if q, ok := provider.AsQuota(err); !ok || !q.IsTerminal() || q.ErrStage() != provider.StageTTS || q.Hint == "" {
		t.Fatalf("got %v", err)
	}
	if a := answers(front, "tts"); len(a) != 1 || a[0].Status != 429 || !strings.Contains(a[0].Why, "upstream refused") {
		t.Fatalf("front answered %+v", a)
	}
}

func TestUpstreamNeedsCredentials(t *testing.T) {
	_, err := New(Options{Speech: silentSpeech{}, Upstream: &Upstream{URL: "http://127.0.0.1:1/v1"}})
	if err == nil || !strings.Contains(err.Error(), "LIVEKIT_API_KEY") {
		t.Fatalf("got %v", err)
	}
}

// Credentials go to an upstream on another machine over https only,
// unless allowed.
func TestUpstreamRefusesPlainHTTPToAnotherMachine(t *testing.T) {
	u := &Upstream{URL: "http://10.0.0.5:7890/v1", Key: "key", Secret: "a-long-enough-secret"}
	_, err := New(Options{Speech: silentSpeech{}, Upstream: u})
	if err == nil || !strings.Contains(err.Error(), "--allow-insecure-http") {
		t.Fatalf("got %v", err)
	}
	u.AllowInsecureHTTP = true
	s, err := New(Options{Speech: silentSpeech{}, Upstream: u})
	if err != nil {
		t.Fatal(err)
	}
	s.Close(t.Context())
}
