package localgw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func quotas(t *testing.T, rules ...string) []QuotaRule {
	t.Helper()
	var out []QuotaRule
	for _, s := range rules {
		r, err := ParseQuota(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func faults(t *testing.T, rules ...string) []FaultRule {
	t.Helper()
	var out []FaultRule
	for _, s := range rules {
		r, err := ParseFault(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// request makes one request of stage through the real client.
func request(t *testing.T, stage Stage, cfg gateway.Config) error {
	t.Helper()
	switch stage {
	case LLM:
		_, err := ask(t, cfg, "hello")
		return err
	case STT, BargeIn:
		stt, _ := gateway.NewSTT(cfg)
		s, err := stt.Stream(context.Background())
		if err == nil {
			s.Close()
		}
		return err
	case TTS:
		_, err := say(t, newTTS(t, cfg), "Hi.")
		return err
	}
	panic(stage)
}

func TestQuotaRulesThroughTheClients(t *testing.T) {
	type want struct {
		category  string
		terminal  bool
		quotaType string
	}
	kinds := map[QuotaKind]func(Stage) want{
		Credits: func(s Stage) want {
			if s == BargeIn {
				return want{"MaxBargeInRequests", true, "bargein"}
			}
			return want{"MaxGatewayCredits", true, string(s)}
		},
		Rate: func(s Stage) want {
			c := map[Stage]string{LLM: "MaxConcurrentGatewayLLMRpm", STT: "MaxConcurrentGatewaySTT", TTS: "MaxConcurrentGatewayTTS", BargeIn: "MaxConcurrentGatewayBargeIn"}[s]
			return want{c, false, string(s)}
		},
		Unknown:   func(s Stage) want { return want{"MaxGatewayFutureLimit", false, string(s)} },
		Malformed: func(s Stage) want { return want{"", false, string(s)} },
	}
	for _, stage := range []Stage{LLM, STT, TTS, BargeIn} {
		for kind, expect := range kinds {
			rule := string(stage) + ":" + string(kind)
			t.Run(rule, func(t *testing.T) {
				_, cfg := start(t, Options{Speech: silentSpeech{}, Quotas: quotas(t, rule)})
				err := request(t, stage, cfg)
				q, ok := provider.AsQuota(err)
				w := expect(stage)
				if !ok {
					t.Fatalf("got %T %v, want a QuotaError", err, err)
				}
				if q.Category != w.category || provider.Terminal(err) != w.terminal || provider.Retryable(err) == w.terminal || q.QuotaType != w.quotaType {
					t.Fatalf("got %+v terminal=%v, want %+v", q, provider.Terminal(err), w)
				}
				if kind != Malformed && q.Hint == "" {
					t.Fatal("no hint")
				}
				if kind == Malformed && (q.Hint != "" || q.RemainingLimit != "") {
					t.Fatalf("non-string fields must be absent: %+v", q)
				}
			})
		}
	}
}

func TestRateLimitBurstIsSurvived(t *testing.T) {
	for _, stage := range []Stage{LLM, STT, TTS} {
		t.Run(string(stage), func(t *testing.T) {
			// Shorter than the client's 3 retries: the request succeeds.
			s, cfg := start(t, Options{Speech: silentSpeech{}, Quotas: quotas(t, string(stage)+":rate:count=2")})
			var retries int
			cfg.Retry.OnRetry = func(int, error, time.Duration) { retries++ }
			if err := request(t, stage, cfg); err != nil {
				t.Fatal(err)
			}
			if retries != 2 {
				t.Fatalf("%d retries, want 2", retries)
			}
			if q, _ := s.Policy().Rules(); len(q) != 0 {
				t.Fatalf("the spent rule stays: %v", q)
			}
		})
	}
}

func TestTTSCreditsRunOutMidSession(t *testing.T) {
	_, cfg := start(t, Options{Speech: silentSpeech{}, Quotas: quotas(t, "tts:credits:after=2")})
	tts := newTTS(t, cfg)
	for i := range 2 {
		if _, err := say(t, tts, "Fine."); err != nil {
			t.Fatalf("utterance %d: %v", i+1, err)
		}
	}
	// The third utterance, on the pooled socket, is refused in the stream.
	_, err := say(t, tts, "Refused.")
	if q, ok := provider.AsQuota(err); !ok || !provider.Terminal(err) || q.QuotaType != "tts" {
		t.Fatalf("third utterance: %v", err)
	}
}

func TestSTTCreditsSetWhileOpen(t *testing.T) {
	s, cfg := start(t, Options{STTScript: []string{"hello"}})
	stt, _ := gateway.NewSTT(cfg)
	st, err := stt.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, _ := ParseQuota("stt:credits")
	s.Policy().AddQuota(r)
	st.Write(speech(t, "hello"))
	st.Finalize()
	for {
		_, err := st.Recv()
		if err != nil {
			if q, ok := provider.AsQuota(err); !ok || !provider.Terminal(err) || q.QuotaType != "stt" {
				t.Fatalf("got %v", err)
			}
			return
		}
	}
}

func TestFaultsThroughTheClients(t *testing.T) {
	cases := []struct {
		fault   string
		timeout time.Duration
		check   func(t *testing.T, content bool, err error)
	}{
		{"llm:5xx:count=1", 0, func(t *testing.T, content bool, err error) {
			if err != nil || !content {
				t.Fatalf("one 503 is retried: %v", err)
			}
		}},
		{"llm:5xx", 0, func(t *testing.T, content bool, err error) {
			if se, ok := provider.AsStatus(err); !ok || se.StatusCode != 503 || !provider.Retryable(err) {
				t.Fatalf("got %v", err)
			}
		}},
		{"llm:disconnect", 0, func(t *testing.T, content bool, err error) {
			var ce *provider.ConnectionError
			if !content || !errors.As(err, &ce) {
				t.Fatalf("content %v, %v", content, err)
			}
		}},
		{"llm:stall", 200 * time.Millisecond, func(t *testing.T, content bool, err error) {
			var te *provider.TimeoutError
			if !content || !errors.As(err, &te) {
				t.Fatalf("content %v, %v", content, err)
			}
		}},
		{"llm:malformed", 0, func(t *testing.T, content bool, err error) {
			var pe *provider.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v", err)
			}
		}},
		{"llm:delay=300ms", 100 * time.Millisecond, func(t *testing.T, content bool, err error) {
			var te *provider.TimeoutError
			if !errors.As(err, &te) {
				t.Fatalf("a first token later than the timeout: %v", err)
			}
		}},
		{"llm:delay=50ms", 0, func(t *testing.T, content bool, err error) {
			if err != nil || !content {
				t.Fatalf("a short delay: %v", err)
			}
		}},
		{"tts:5xx", 0, func(t *testing.T, content bool, err error) {
			if se, ok := provider.AsStatus(err); !ok || se.StatusCode != 503 || se.Stage != provider.StageTTS {
				t.Fatalf("got %v", err)
			}
		}},
		{"tts:disconnect", 0, func(t *testing.T, content bool, err error) {
			var ce *provider.ConnectionError
			if !content || !errors.As(err, &ce) {
				t.Fatalf("content %v, %v", content, err)
			}
		}},
		{"tts:stall", 200 * time.Millisecond, func(t *testing.T, content bool, err error) {
			var te *provider.TimeoutError
			if !content || !errors.As(err, &te) {
				t.Fatalf("content %v, %v", content, err)
			}
		}},
		{"tts:malformed", 0, func(t *testing.T, content bool, err error) {
			var pe *provider.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v", err)
			}
		}},
		{"stt:5xx", 0, func(t *testing.T, content bool, err error) {
			if se, ok := provider.AsStatus(err); !ok || se.StatusCode != 503 || se.Stage != provider.StageSTT {
				t.Fatalf("got %v", err)
			}
		}},
		{"stt:disconnect", 0, func(t *testing.T, content bool, err error) {
			var ce *provider.ConnectionError
			if !content || !errors.As(err, &ce) {
				t.Fatalf("content %v, %v", content, err)
			}
		}},
		{"stt:malformed", 0, func(t *testing.T, content bool, err error) {
			var pe *provider.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v", err)
			}
		}},
		{"stt:delay=50ms", 0, func(t *testing.T, content bool, err error) {
			if err != nil || !content {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.fault, func(t *testing.T) {
			_, cfg := start(t, Options{Speech: silentSpeech{}, Faults: faults(t, c.fault), STTScript: []string{"hello"}})
			if c.timeout > 0 {
				cfg.Retry.Timeout = c.timeout
			}
			var content bool
			var err error
			switch c.fault[:3] {
			case "llm":
				var got string
				got, err = ask(t, cfg, "hello")
				content = got != ""
			case "tts":
				var pcm []int16
				pcm, err = say(t, newTTS(t, cfg), "Hello there.")
				content = len(pcm) > 0
			case "stt":
				content, err = transcribe(t, cfg)
			}
			c.check(t, content, err)
		})
	}
}

// transcribe runs one turn of speech and reports whether a transcript
// came and the stream's error (nil once session.finalized arrives).
func transcribe(t *testing.T, cfg gateway.Config) (bool, error) {
	stt, _ := gateway.NewSTT(cfg)
	s, err := stt.Stream(context.Background())
	if err != nil {
		return false, err
	}
	defer s.Close()
	// Send like a microphone, in 20 ms pieces; on a write error, still
	// read what the gateway sent before it went away.
	pcm := speech(t, "hello")
	var werr error
	for i := 0; i < len(pcm) && werr == nil; i += 320 {
		werr = s.Write(pcm[i:min(i+320, len(pcm))])
	}
	if werr == nil {
		werr = s.Finalize()
	}
	content := false
	for {
		ev, err := s.Recv()
		if err != nil {
			return content, err
		}
		content = content || ev.Text != ""
		if ev.Type == provider.Finalized {
			return content, werr
		}
	}
}

func TestAuthRefusals(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	good, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	wrong, _ := gateway.Token(DefaultKey, "not-the-secret", "agent", time.Now())
	expired, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now().Add(-time.Hour))
	for name, auth := range map[string]string{"missing": "", "wrong signature": "Bearer " + wrong, "expired": "Bearer " + expired, "not bearer": "Basic " + good} {
		for _, path := range []string{"/chat/completions", "/models", "/stt", "/tts"} {
			method := "GET"
			if path == "/chat/completions" {
				method = "POST"
			}
			req, _ := http.NewRequest(method, s.URL()+path, strings.NewReader(`{}`))
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(body), `"error"`) {
				t.Errorf("%s %s: %d %s", name, path, resp.StatusCode, body)
			}
		}
	}
}

func TestTwentyConcurrentSessions(t *testing.T) {
	speech(t, "hello") // warm espeak-ng before the crowd
	_, cfg := start(t, Options{STTScript: strings.Split(strings.Repeat("hello there\n", 20), "\n")})
	tts := newTTS(t, cfg)
	var wg sync.WaitGroup
	errs := make(chan error, 60)
	for range 20 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			if got, err := ask(t, cfg, "help"); err != nil || got == "" {
				errs <- errors.Join(errors.New("llm"), err)
			}
		}()
		go func() {
			defer wg.Done()
			if content, err := transcribe(t, cfg); err != nil || !content {
				errs <- errors.Join(errors.New("stt"), err)
			}
		}()
		go func() {
			defer wg.Done()
			if pcm, err := say(t, tts, "Twenty at once."); err != nil || len(pcm) == 0 {
				errs <- errors.Join(errors.New("tts"), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWireResponses(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}, Quotas: quotas(t, "llm:rate:after=1")})
	tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	post := func() *http.Response {
		req, _ := http.NewRequest("POST", s.URL()+"/chat/completions", strings.NewReader(`{"model":"x","stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"help"}]}]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	ok := post()
	body, _ := io.ReadAll(ok.Body)
	ok.Body.Close()
	if ok.StatusCode != 200 || ok.Header.Get("Content-Type") != "text/event-stream" || !strings.Contains(string(body), `"content":"demo "`) ||
		!strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("200: %d %q", ok.StatusCode, body)
	}
	refused := post()
	body, _ = io.ReadAll(refused.Body)
	refused.Body.Close()
	if refused.StatusCode != 429 || refused.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), `"category":"MaxConcurrentGatewayLLMRpm"`) {
		t.Fatalf("429: %d %v %s", refused.StatusCode, refused.Header, body)
	}
	for _, resp := range []*http.Response{ok, refused} {
		for _, h := range []string{"RPM-Limit", "RPM-Used", "TPM-Limit", "TPM-Used"} {
			if resp.Header.Get("X-LiveKit-Inference-"+h) == "" {
				t.Errorf("%d: no X-LiveKit-Inference-%s", resp.StatusCode, h)
			}
		}
	}
}

func TestSTTHandshakeWindow(t *testing.T) {
	_, cfg := start(t, Options{STTScript: []string{"one", "two"}, Quotas: quotas(t, "stt:credits:after=1")})
	if content, err := transcribe(t, cfg); err != nil || !content {
		t.Fatalf("first connection: %v", err)
	}
	_, err := transcribe(t, cfg)
	if q, ok := provider.AsQuota(err); !ok || !provider.Terminal(err) || q.QuotaType != "stt" {
		t.Fatalf("second connection: %v", err)
	}
}

func TestTTSInStream5xx(t *testing.T) {
	_, cfg := start(t, Options{Speech: silentSpeech{}, Faults: faults(t, "tts:5xx:after=1:count=1")})
	var retried []error
	cfg.Retry.OnRetry = func(_ int, err error, _ time.Duration) { retried = append(retried, err) }
	tts := newTTS(t, cfg)
	if _, err := say(t, tts, "One."); err != nil || len(retried) != 0 {
		t.Fatal(err, retried)
	}
	// The second utterance gets an error message on the pooled socket; the
	// client replaces the socket and replays the text: it is still spoken.
	if pcm, err := say(t, tts, "Two."); err != nil || len(pcm) == 0 {
		t.Fatalf("%v", err)
	}
	var se *provider.ServerError
	if len(retried) != 1 || !errors.As(retried[0], &se) || se.Code != "503" {
		t.Fatalf("retried after %v", retried)
	}
}

func TestDelaysDelay(t *testing.T) {
	for _, f := range []string{"stt:delay=300ms", "tts:delay=300ms", "llm:delay=300ms"} {
		t.Run(f, func(t *testing.T) {
			_, cfg := start(t, Options{Speech: silentSpeech{}, Faults: faults(t, f), STTScript: []string{"hello"}})
			pcm := speech(t, "hello")
			t0 := time.Now()
			var err error
			switch f[:3] {
			case "llm":
				_, err = ask(t, cfg, "hi")
			case "tts":
				_, err = say(t, newTTS(t, cfg), "Hi.")
			case "stt":
				stt, _ := gateway.NewSTT(cfg)
				s, serr := stt.Stream(context.Background())
				if serr != nil {
					t.Fatal(serr)
				}
				defer s.Close()
				s.Write(pcm)
				t0 = time.Now()
				s.Finalize()
				for {
					ev, rerr := s.Recv()
					if rerr != nil || ev.Type == provider.FinalTranscript {
						err = rerr
						break
					}
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(t0); d < 300*time.Millisecond {
				t.Fatalf("answered after %v despite a 300 ms delay", d)
			}
		})
	}
}

func TestBadFramesGetAnError(t *testing.T) {
	s, _ := start(t, Options{Speech: silentSpeech{}})
	tok, _ := gateway.Token(DefaultKey, DefaultSecret, "agent", time.Now())
	for _, path := range []string{"/stt", "/tts"} {
		c, _, err := websocket.Dial(context.Background(), strings.Replace(s.URL(), "http", "ws", 1)+path,
			&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}}})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(context.Background(), websocket.MessageText, []byte(`not json`))
		_, data, err := c.Read(context.Background())
		if err != nil || !strings.Contains(string(data), `"type":"error"`) {
			t.Errorf("%s: %s %v", path, data, err)
		}
		c.CloseNow()
	}
}
