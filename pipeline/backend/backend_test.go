package backend

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestOpenChoosesTheBackend(t *testing.T) {
	cases := []struct {
		name string
		o    Options
		env  func(string) string
		want Kind
		err  string
	}{
		{"nothing configured: embedded", Options{}, env(), Embedded, ""},
		{"embedded asked for", Options{Kind: Embedded, LLMModel: "any"}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1"), Embedded, ""},
		{"embedded with a gateway URL", Options{Kind: Embedded, GatewayURL: "http://x/v1"}, env(), "", "in-process"},
		{"rules on a real backend", Options{Local: localgw.Options{STTScript: []string{"hi"}}}, env("OPENAI_API_KEY", "sk-abcdefghijkl"), "", "drive the embedded gateway"},
		{"livekit by env", Options{}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1"), LiveKit, ""},
		{"livekit inference names win", Options{}, env("LIVEKIT_INFERENCE_API_KEY", "k", "LIVEKIT_INFERENCE_API_SECRET", "secret-1"), LiveKit, ""},
		{"key without secret: embedded", Options{}, env("LIVEKIT_API_KEY", "k"), Embedded, ""},
		{"openai by key", Options{}, env("OPENAI_API_KEY", "sk-abcdefghijkl"), OpenAI, ""},
		{"local openai-compatible server", Options{OpenAIURL: "http://localhost:11434/v1"}, env(), OpenAI, ""},
		{"livekit preferred over openai", Options{}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1", "OPENAI_API_KEY", "sk-abcdefghijkl"), LiveKit, ""},
		{"forced livekit without credentials", Options{Kind: LiveKit}, env(), "", "LIVEKIT_API_KEY"},
		{"forced openai without key", Options{Kind: OpenAI}, env(), "", "OPENAI_API_KEY"},
		{"priority on openai", Options{Kind: OpenAI, Priority: "low"}, env("OPENAI_API_KEY", "sk-abcdefghijkl"), "", "LiveKit Inference only"},
		{"bad priority", Options{Priority: "urgent"}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1"), "", "priority"},
		{"bad gateway URL", Options{GatewayURL: "agent-gateway"}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1"), "", "not an http(s) URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := Open(c.o, c.env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want an error with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Kind != c.want || b.LLM == nil || b.STT == nil || b.TTS == nil {
				t.Fatalf("got %+v", b)
			}
			if strings.Contains(b.Description, "secret-1") || strings.Contains(b.Description, "sk-") {
				t.Fatalf("a credential in %q", b.Description)
			}
		})
	}
}

func TestDescriptionHidesURLPasswords(t *testing.T) {
	b, err := Open(Options{OpenAIURL: "http://user:hunter22@localhost:8000/v1", LLMModel: "llama3"}, env())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.Contains(b.Description, "hunter22") || !strings.Contains(b.Description, "llama3") {
		t.Fatal(b.Description)
	}
	// Credentials in the query string too.
	b, err = Open(Options{OpenAIURL: "http://localhost:8000/v1?api_key=querykey123&x=1"}, env())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.Contains(b.Description, "querykey123") || !strings.Contains(b.Description, "localhost:8000") {
		t.Fatal(b.Description)
	}
}

func TestStagingURL(t *testing.T) {
	b, err := Open(Options{}, env("LIVEKIT_API_KEY", "k", "LIVEKIT_API_SECRET", "secret-1", "LIVEKIT_URL", "wss://x.staging.livekit.cloud"))
	if err != nil || !strings.Contains(b.Description, "agent-gateway.staging.livekit.cloud") {
		t.Fatalf("%v %v", b, err)
	}
	b.Close()
}

func TestParseKind(t *testing.T) {
	for in, want := range map[string]Kind{"": Auto, "AUTO": Auto, "livekit": LiveKit, " openai ": OpenAI, "embedded": Embedded} {
		if k, err := ParseKind(in); err != nil || k != want {
			t.Errorf("%q: %v %v", in, k, err)
		}
	}
	if _, err := ParseKind("azure"); err == nil {
		t.Error("azure accepted")
	}
}

// The default backend is a working conversation partner: the embedded
// gateway answers through the LiveKit clients, and stops on Close.
func TestEmbeddedAnswersAndStops(t *testing.T) {
	b, err := Open(Options{}, env())
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.LLM.Chat(context.Background(), []provider.Message{{Role: "user", Content: "hello"}})
	if err != nil {
		t.Fatal(err)
	}
	var reply strings.Builder
	for s.Next() {
		reply.WriteString(s.Current())
	}
	s.Close()
	if s.Err() != nil || !strings.Contains(reply.String(), "demo agent") {
		t.Fatalf("%q %v", reply.String(), s.Err())
	}
	url := b.Gateway.URL()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(url + "/models"); err == nil {
		t.Fatal("the embedded gateway still answers after Close")
	}
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
