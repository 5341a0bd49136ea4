package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func newTTS(t *testing.T, cfg Config) *TTS {
	t.Helper()
	s, err := NewTTS(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// speechFor is the audio the fake gateway "speaks" for text: one sample
// per byte, so the test can check order and completeness.
func speechFor(text string) []int16 {
	out := make([]int16, len(text))
	for i := range len(text) {
		out[i] = int16(text[i]) * 100
	}
	return out
}

func pcmMessage(samples []int16) map[string]any {
	b := make([]byte, 2*len(samples))
	for i, v := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return map[string]any{"type": "output_audio", "audio": base64.StdEncoding.EncodeToString(b)}
}

// ttsServer speaks every flushed utterance in frames of 7 samples, and
// reports each session it serves.
type ttsServer struct {
	t        *testing.T
	mu       sync.Mutex
	sessions int
	creates  []map[string]any
	texts    []string // per flush
	// hangUpAfter closes the socket after that many utterances (0: never).
	hangUpAfter int
	// eager speaks each sentence as it arrives instead of at the flush.
	eager bool
}

func (s *ttsServer) serve(ctx context.Context, c *websocket.Conn, r *http.Request) {
	create, err := readJSON(ctx, c)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.sessions++
	s.creates = append(s.creates, create)
	s.mu.Unlock()
	sendJSON(ctx, c, map[string]any{"type": "session.created"})
	var text strings.Builder
	served := 0
	for {
		m, err := readJSON(ctx, c)
		if err != nil {
			return
		}
		switch m["type"] {
		case "input_transcript":
			text.WriteString(m["transcript"].(string))
			if s.eager {
				pcm := speechFor(text.String())
				text.Reset()
				sendJSON(ctx, c, pcmMessage(pcm))
			}
		case "session.flush":
			s.mu.Lock()
			s.texts = append(s.texts, text.String())
			s.mu.Unlock()
			pcm := speechFor(text.String())
			text.Reset()
			for i := 0; i < len(pcm); i += 7 {
				sendJSON(ctx, c, pcmMessage(pcm[i:min(i+7, len(pcm))]))
				sendJSON(ctx, c, map[string]any{"type": "output_alignment"})
			}
			sendJSON(ctx, c, map[string]any{"type": "done"})
			served++
			if served == s.hangUpAfter {
				c.Close(websocket.StatusNormalClosure, "")
				return
			}
		}
	}
}

// speak runs one utterance and returns all its audio.
func speak(t *testing.T, tts *TTS, sentences ...string) ([]int16, error) {
	return pipelinetest.Say(context.Background(), tts, sentences...)
}

func TestTTSUtterancesReuseOneSocket(t *testing.T) {
	srv := &ttsServer{t: t}
	cfg := fakeGateway(t, wsHandler(t, srv.serve))
	tts := newTTS(t, cfg)
	for _, sentences := range [][]string{{"Hello there.", "How are you?"}, {"Fine."}} {
		got, err := speak(t, tts, sentences...)
		if err != nil {
			t.Fatal(err)
		}
		if want := speechFor(strings.Join(sentences, " ") + " "); !slices.Equal(got, want) {
			t.Fatalf("audio of %d samples, want %d in order", len(got), len(want))
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sessions != 1 {
		t.Fatalf("%d sockets for two utterances, want 1", srv.sessions)
	}
	c := srv.creates[0]
	if c["type"] != "session.create" || c["sample_rate"] != "24000" || c["encoding"] != "pcm_s16le" || c["model"] != DefaultTTSModel || c["voice"] != DefaultVoice {
		t.Fatalf("session.create %v", c)
	}
}

func TestTTSReplacesADroppedPooledSocket(t *testing.T) {
	srv := &ttsServer{t: t, hangUpAfter: 1}
	cfg := fakeGateway(t, wsHandler(t, srv.serve))
	tts := newTTS(t, cfg)
	for _, text := range []string{"One.", "Two."} {
		got, err := speak(t, tts, text)
		if err != nil {
			t.Fatalf("%s: %v", text, err)
		}
		if !slices.Equal(got, speechFor(text+" ")) {
			t.Fatalf("%s: wrong audio", text)
		}
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sessions != 2 || len(srv.texts) != 2 || srv.texts[1] != "Two. " {
		t.Fatalf("sessions %d, texts %q", srv.sessions, srv.texts)
	}
}

func TestTTSHandshakeRefusals(t *testing.T) {
	for _, c := range []struct {
		category string
		terminal bool
		attempts int
	}{
		{"MaxGatewayCredits", true, 1},
		{"MaxConcurrentGatewayTTS", false, 1 + provider.DefaultRetries},
	} {
		t.Run(c.category, func(t *testing.T) {
			var hits pipelinetest.Counter
			cfg := fakeGateway(t, refuseHandshake(&hits, 429, func(int) string { return pipelinetest.QuotaBody("tts", c.category) }))
			_, err := newTTS(t, cfg).Synthesize(context.Background())
			q, ok := provider.AsQuota(err)
			if !ok || q.QuotaType != "tts" || q.Category != c.category || q.ErrStage() != provider.StageTTS || provider.Terminal(err) != c.terminal {
				t.Fatalf("got %v", err)
			}
			if hits.Load() != c.attempts {
				t.Fatalf("%d attempts, want %d", hits.Load(), c.attempts)
			}
		})
	}
}

func TestTTSBadCredentials(t *testing.T) {
	cfg := fakeGateway(t, http.NotFoundHandler())
	cfg.APISecret = "tts-wrong-secret"
	_, err := newTTS(t, cfg).Synthesize(context.Background())
	se, ok := provider.AsStatus(err)
	if !ok || se.StatusCode != 401 || !provider.Terminal(err) || se.Stage != provider.StageTTS {
		t.Fatalf("got %v", err)
	}
	noSecrets(t, err.Error(), "tts-wrong-secret")
}

func TestTTSGatewayErrorMessage(t *testing.T) {
	t.Run("after audio: surfaced, not retried", func(t *testing.T) {
		var sessions pipelinetest.Counter
		cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			sessions.Add()
			readJSON(ctx, c)
			readJSON(ctx, c) // input_transcript
			sendJSON(ctx, c, pcmMessage([]int16{1, 2, 3}))
			sendJSON(ctx, c, map[string]any{"type": "error", "message": "voice not found"})
			drain(ctx, c)
		}))
		got, err := speak(t, newTTS(t, cfg), "Hi.")
		var se *provider.ServerError
		if !errors.As(err, &se) || se.Message != "voice not found" || !slices.Equal(got, []int16{1, 2, 3}) || sessions.Load() != 1 {
			t.Fatalf("audio %v, %v, %d sessions", got, err, sessions.Load())
		}
	})
	t.Run("before audio: retried on a new socket", func(t *testing.T) {
		var sessions pipelinetest.Counter
		cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
			n := sessions.Add()
			readJSON(ctx, c)
			m, _ := readJSON(ctx, c)
			if n == 1 {
				sendJSON(ctx, c, map[string]any{"type": "error", "message": "provider busy", "code": "503"})
				drain(ctx, c)
				return
			}
			readJSON(ctx, c) // flush
			if m["transcript"] != "Hi. " {
				t.Errorf("replayed %v", m)
			}
			sendJSON(ctx, c, pcmMessage([]int16{4, 5}))
			sendJSON(ctx, c, map[string]any{"type": "done"})
			drain(ctx, c)
		}))
		got, err := speak(t, newTTS(t, cfg), "Hi.")
		if err != nil || !slices.Equal(got, []int16{4, 5}) || sessions.Load() != 2 {
			t.Fatalf("audio %v, %v, %d sessions", got, err, sessions.Load())
		}
	})
}

func TestTTSStalledStreamTimesOut(t *testing.T) {
	cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		readJSON(ctx, c)
		readJSON(ctx, c)
		sendJSON(ctx, c, pcmMessage([]int16{1}))
		drain(ctx, c) // then silence
	}))
	cfg.Retry.Timeout = 100 * time.Millisecond
	got, err := speak(t, newTTS(t, cfg), "Hi.")
	var te *provider.TimeoutError
	if !errors.As(err, &te) || te.Stage != provider.StageTTS || len(got) != 1 {
		t.Fatalf("audio %v, %v", got, err)
	}
}

// Messages that are not audio (alignments with no audio behind them, as
// a stalled server might still send) do not hold the stream open: only
// audio buys time.
func TestTTSKeepalivesAreNotAudio(t *testing.T) {
	finished := make(chan struct{}) // the server sent all its alignments: the client waited them out
	cfg := fakeGateway(t, wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
		readJSON(ctx, c)
		readJSON(ctx, c)
		sendJSON(ctx, c, pcmMessage([]int16{1}))
		for range 500 { // 10 s of them, never audio
			if sendJSON(ctx, c, map[string]any{"type": "output_alignment", "session_id": "s1", "words": []any{}}) != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		close(finished)
	}))
	cfg.Retry.Timeout = 100 * time.Millisecond
	got, err := speak(t, newTTS(t, cfg), "Hi.")
	var te *provider.TimeoutError
	if !errors.As(err, &te) || te.Stage != provider.StageTTS || len(got) != 1 {
		t.Fatalf("audio %v, %v", got, err)
	}
	select {
	case <-finished:
		t.Fatal("the timeout came only once the keepalives stopped")
	default:
	}
}

func TestTTSBargeInDropsTheSocket(t *testing.T) {
	srv := &ttsServer{t: t}
	cfg := fakeGateway(t, wsHandler(t, srv.serve))
	tts := newTTS(t, cfg)
	u, err := tts.Synthesize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u.Push("A long reply that the user interrupts.")
	u.Flush()
	if _, err := u.Recv(); err != nil {
		t.Fatal(err)
	}
	u.Close() // barge-in: its audio may still be in flight on the socket
	if _, err := u.Recv(); err == nil || err == io.EOF {
		t.Fatalf("Recv after Close: %v", err)
	}
	if err := u.Push("more"); err == nil {
		t.Fatal("Push after Close succeeded")
	}
	got, err := speak(t, tts, "Next.")
	if err != nil || !slices.Equal(got, speechFor("Next. ")) {
		t.Fatalf("next utterance: %v", err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.sessions != 2 {
		t.Fatalf("%d sockets; an interrupted one must not be reused", srv.sessions)
	}
}

func TestDecodeTTS(t *testing.T) {
	kind, pcm, err := DecodeTTS([]byte(`{"type":"output_audio","audio":"AQACAA=="}`), nil)
	if err != nil || kind != ttsAudio || !slices.Equal(pcm, []int16{1, 2}) {
		t.Fatalf("%v %v %v", kind, pcm, err)
	}
	for _, bad := range []string{`{"type":"output_audio","audio":"AQ=="}`, `{"type":"output_audio","audio":"!!"}`, `{"type":"output_audio","audio":7}`, `{"type":"output_audio"}`, `nope`} {
		var pe *provider.ProtocolError
		if _, _, err := DecodeTTS([]byte(bad), nil); !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a ProtocolError", bad, err)
		}
	}
	// A quota body inside an open stream is typed like one at the handshake.
	if _, _, err := DecodeTTS([]byte(pipelinetest.QuotaBody("tts", "MaxGatewayCredits")), nil); !provider.Terminal(err) {
		t.Errorf("in-stream quota body: %v", err)
	}
	_, _, err = DecodeTTS([]byte(`{"type":"error","message":"bad voice"}`), nil)
	var se *provider.ServerError
	if !errors.As(err, &se) || se.Stage != provider.StageTTS {
		t.Fatalf("error message: %v", err)
	}
}

func FuzzDecodeTTS(f *testing.F) {
	for _, s := range []string{
		`{"type":"output_audio","audio":"AQACAA=="}`, `{"type":"done"}`, `{"type":"error","message":"x"}`,
		`{"type":"output_alignment","words":[]}`, `{"type":"session.closed"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, pcm, err := DecodeTTS(data, nil)
		if err != nil {
			var c provider.Classified
			if !errors.As(err, &c) || c.ErrStage() != provider.StageTTS {
				t.Fatalf("untyped error %T %v", err, err)
			}
			return
		}
		if kind != ttsAudio && len(pcm) != 0 {
			t.Fatalf("audio from a %v message", kind)
		}
	})
}

func TestTTSPauseBetweenSentencesIsNotAStall(t *testing.T) {
	srv := &ttsServer{t: t, eager: true}
	cfg := fakeGateway(t, wsHandler(t, srv.serve))
	cfg.Retry.Timeout = 150 * time.Millisecond
	u, err := newTTS(t, cfg).Synthesize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	u.Push("One.")
	if pcm, err := u.Recv(); err != nil || !slices.Equal(pcm, speechFor("One. ")) {
		t.Fatalf("%v %v", pcm, err)
	}
	// The LLM thinks for longer than the idle timeout: nothing is owed.
	got := make(chan error, 1)
	go func() {
		pcm, err := u.Recv()
		if err == nil && !slices.Equal(pcm, speechFor("Two. ")) {
			err = errors.New("wrong audio")
		}
		got <- err
	}()
	time.Sleep(3 * cfg.Retry.Timeout)
	u.Push("Two.")
	if err := <-got; err != nil {
		t.Fatalf("after a pause: %v", err)
	}
	u.Flush()
	if _, err := u.Recv(); err != io.EOF {
		t.Fatalf("want the end of the utterance, got %v", err)
	}
}

// A stalled first socket is replaced; the replacement is refused once with
// a Retry-After longer than the idle timeout; the third socket speaks. The
// first socket's idle timer must not hurt the later ones.
func TestTTSStallThenRateLimitThenRecovery(t *testing.T) {
	var sessions pipelinetest.Counter
	srv := &ttsServer{t: t}
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch sessions.Add() {
		case 1:
			wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) { drain(ctx, c) }).ServeHTTP(w, r)
		case 2:
			w.Header().Set("Retry-After", "1")
			pipelinetest.Refuse(w, 429, pipelinetest.QuotaBody("tts", "MaxConcurrentGatewayTTS"))
		default:
			wsHandler(t, srv.serve).ServeHTTP(w, r)
		}
	}))
	cfg.Retry.Timeout = 200 * time.Millisecond
	cfg.Retry.MaxRetryAfter = 400 * time.Millisecond
	got, err := speak(t, newTTS(t, cfg), "Hello.")
	if err != nil || !slices.Equal(got, speechFor("Hello. ")) || sessions.Load() != 3 {
		t.Fatalf("%v after %d sessions", err, sessions.Load())
	}
}

// Close must not wait for a reconnect in progress (barge-in is immediate).
func TestTTSCloseDuringReconnectReturnsAtOnce(t *testing.T) {
	var sessions pipelinetest.Counter
	release := make(chan struct{})
	cfg := fakeGateway(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessions.Add() == 1 {
			wsHandler(t, func(ctx context.Context, c *websocket.Conn, r *http.Request) {
				readJSON(ctx, c)
				readJSON(ctx, c)
				c.Close(websocket.StatusInternalError, "dropped")
			}).ServeHTTP(w, r)
			return
		}
		<-release // the replacement's handshake hangs until the test ends
	}))
	defer close(release)
	cfg.Retry.Timeout = time.Hour // only Close can end the wait
	tts := newTTS(t, cfg)
	u, err := tts.Synthesize(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	u.Push("Hello.")
	recv := make(chan error, 1)
	go func() { _, err := u.Recv(); recv <- err }()
	for sessions.Load() < 2 { // wait until the reconnect is dialling
		time.Sleep(5 * time.Millisecond)
	}
	u.Close() // returns: the test would hang here otherwise
	if err := <-recv; !errors.Is(err, errUtteranceClosed) {
		t.Fatalf("Recv: %v", err)
	}
}

func TestTTSConcurrentPushRecvClose(t *testing.T) {
	srv := &ttsServer{t: t, eager: true}
	cfg := fakeGateway(t, wsHandler(t, srv.serve))
	tts := newTTS(t, cfg)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := tts.Synthesize(context.Background())
			if err != nil {
				t.Error(err)
				return
			}
			go func() {
				for k := range 5 {
					if u.Push(strings.Repeat("x", k+1)) != nil {
						return
					}
				}
				u.Flush()
			}()
			for n := 0; ; n++ {
				if n == i { // interrupt some utterances part way
					u.Close()
				}
				if _, err := u.Recv(); err != nil {
					if err != io.EOF && !errors.Is(err, errUtteranceClosed) {
						t.Error(err)
					}
					break
				}
			}
			u.Close()
		}()
	}
	wg.Wait()
}
