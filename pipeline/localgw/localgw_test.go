package localgw

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start runs an embedded gateway on a free loopback port and returns the
// client configuration pointing at it (fast retries for tests).
func start(t testing.TB, opts Options) (*Server, gateway.Config) {
	t.Helper()
	if opts.TokenDelay == 0 {
		opts.TokenDelay = -1
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	cfg := gateway.ConfigFromEnv(func(string) string { return "" })
	cfg.URL, cfg.APIKey, cfg.APISecret = s.URL(), DefaultKey, DefaultSecret
	cfg.Retry = provider.Retry{First: time.Millisecond, Interval: time.Millisecond, MaxRetryAfter: 5 * time.Millisecond, Timeout: 5 * time.Second}
	return s, cfg
}

func ask(t testing.TB, cfg gateway.Config, text string) (string, error) {
	t.Helper()
	llm, err := gateway.NewLLM(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := llm.Chat(context.Background(), []provider.Message{{Role: "user", Content: text}})
	if err != nil {
		return "", err
	}
	defer s.Close()
	var b strings.Builder
	for s.Next() {
		b.WriteString(s.Current())
	}
	return b.String(), s.Err()
}

// say synthesizes sentences through the real TTS client.
func say(t testing.TB, tts provider.TTS, sentences ...string) ([]int16, error) {
	return pipelinetest.Say(context.Background(), tts, sentences...)
}

func newTTS(t testing.TB, cfg gateway.Config) *gateway.TTS {
	t.Helper()
	tts, err := gateway.NewTTS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tts.Close() })
	return tts
}

// speech is real synthetic speech at 16 kHz: espeak-ng saying text,
// framed by silence.
func speech(t testing.TB, text string) []int16 {
	t.Helper()
	e, err := NewEspeak()
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := e.SpeakAt(context.Background(), text, "en-us", 16000)
	if err != nil {
		t.Fatal(err)
	}
	out := append(make([]int16, 8000), pcm...) // 0.5 s of silence before
	return append(out, make([]int16, 16000)...)
}

func rmsDB(p []int16) float64 {
	var sum float64
	for _, v := range p {
		sum += float64(v) * float64(v)
	}
	return 20 * math.Log10(math.Sqrt(sum/float64(len(p)))/32768)
}

func TestConformanceLLM(t *testing.T) {
	_, cfg := start(t, Options{})
	got, err := ask(t, cfg, "What time is it?")
	if err != nil || !strings.HasPrefix(got, "It is ") {
		t.Fatalf("%q %v", got, err)
	}
	got, err = ask(t, cfg, "help")
	if err != nil || got != Reply("help", time.Now()) {
		t.Fatalf("%q %v", got, err)
	}
}

func TestConformanceModels(t *testing.T) {
	s, _ := start(t, Options{})
	req, _ := http.NewRequest("GET", s.URL()+"/models", nil)
	tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), LLMModel) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestConformanceSTT(t *testing.T) {
	_, cfg := start(t, Options{STTScript: []string{"what time is it", "goodbye"}})
	stt, err := gateway.NewSTT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stt.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	events := make(chan provider.STTEvent, 100)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := s.Recv()
			if err != nil {
				errc <- err
				return
			}
			events <- ev
		}
	}()
	for turn, want := range []string{"what time is it", "goodbye"} {
		pcm := speech(t, "what time is it")
		for i := 0; i < len(pcm); i += 320 {
			if err := s.Write(pcm[i:min(i+320, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Finalize(); err != nil {
			t.Fatal(err)
		}
		var got []provider.STTEvent
		for done := false; !done; {
			select {
			case ev := <-events:
				got = append(got, ev)
				done = ev.Type == provider.Finalized
			case err := <-errc:
				t.Fatal(err)
			case <-time.After(10 * time.Second):
				t.Fatalf("turn %d: no session.finalized; got %+v", turn, got)
			}
		}
		if len(got) < 4 || got[0].Type != provider.SpeechStarted || got[1].Type != provider.InterimTranscript {
			t.Fatalf("turn %d: events %+v", turn, got)
		}
		final := got[len(got)-2]
		if final.Type != provider.FinalTranscript || final.Text != want || final.Duration < 500*time.Millisecond {
			t.Fatalf("turn %d: final %+v", turn, final)
		}
	}
}

func TestSTTWithoutScriptSaysItIsSimulated(t *testing.T) {
	_, cfg := start(t, Options{STTEngine: EngineEnergy})
	stt, _ := gateway.NewSTT(cfg)
	s, err := stt.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Write(speech(t, "hello there"))
	s.Finalize()
	time.AfterFunc(10*time.Second, func() { s.Close() }) // a missing final fails, not hangs
	for {
		ev, err := s.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == provider.FinalTranscript {
			if !strings.HasPrefix(ev.Text, "[speech, ") {
				t.Fatalf("final %q", ev.Text)
			}
			return
		}
	}
}

func TestConformanceTTS(t *testing.T) {
	_, cfg := start(t, Options{})
	byRate := map[int]int{}
	for _, r := range []int{16000, 24000} {
		cfg.TTSRate = r
		tts := newTTS(t, cfg)
		pcm, err := say(t, tts, "Hello there.", "This is the embedded gateway speaking.")
		if err != nil {
			t.Fatal(err)
		}
		if d := float64(len(pcm)) / float64(r); d < 1 || d > 8 {
			t.Fatalf("%d Hz: %.2f s of speech for two sentences", r, d)
		}
		if db := rmsDB(pcm); db < -40 {
			t.Fatalf("%d Hz: speech at %.1f dBFS is near silence", r, db)
		}
		byRate[r] = len(pcm)
	}
	// The same words at 24 kHz have 1.5 times the samples of 16 kHz: the
	// audio really is at the session's rate.
	if ratio := float64(byRate[24000]) / float64(byRate[16000]); ratio < 1.45 || ratio > 1.55 {
		t.Fatalf("24 kHz / 16 kHz sample ratio %.3f", ratio)
	}
}
