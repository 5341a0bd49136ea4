package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/openai"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

// An OpenAI-compatible transcription endpoint bills every second it is
// sent: with long silences around two short turns, only the turns (with
// their pre-roll and closing silence) are uploaded, never the silence.
func TestBatchSTTUploadsOnlyTurns(t *testing.T) {
	wav := speechWAV(t, 10*time.Second, "Hello there.", 10*time.Second, "What time is it?", 3*time.Second)
	var mu sync.Mutex
	var uploads []int // samples per request
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/audio/transcriptions", func(w http.ResponseWriter, r *http.Request) {
		f, _, err := r.FormFile("file")
		if err != nil {
			t.Error(err)
			return
		}
		wr, err := audio.NewWAVReader(f, "upload.wav")
		if err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		uploads = append(uploads, int(wr.Samples()))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"text":"hello"}`))
	})
	mux.HandleFunc("POST /v1/chat/completions", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		pipelinetest.SSE(t, w, pipelinetest.Delta("Hi."), "[DONE]")
	})
	mux.HandleFunc("POST /v1/audio/speech", func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 24000/10*2)) // 0.1 s of 24 kHz silence
	})
	srv := httptest.NewServer(pipelinetest.Strict(t, mux))
	defer srv.Close()
	cfg := openai.Config{BaseURL: srv.URL + "/v1", APIKey: "sk-test-0123456789", ChatModel: openai.DefaultChatModel,
		STTModel: openai.DefaultSTTModel, TTSModel: openai.DefaultTTSModel, Voice: openai.DefaultVoice}
	llm, err := openai.NewChat(cfg)
	if err != nil {
		t.Fatal(err)
	}
	stt, err := openai.NewTranscriber(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tts, err := openai.NewSpeech(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tts.Close()
	// Read as fast as it decodes: turn-taking counts frames, not seconds.
	// The second question waits until the agent has answered the first, as
	// a person would (at decoding speed it would otherwise arrive while the
	// agent is still thinking, and be ignored without barge-in).
	wavMic, err := audio.NewWAVSource(wav, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wavMic.Close()
	answered := make(chan struct{})
	var once sync.Once
	mic := &gatedSource{Source: wavMic, after: 16 * audio.PipelineRate, open: answered}
	spk, err := audio.NewClockSink(audio.Format{SampleRate: 24000, Channels: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer spk.Close()
	rec := &recorder{}
	replied := false
	events := conversation.NewEmitter(func(e conversation.Event) {
		rec.add(e)
		switch p := e.Payload.(type) {
		case conversation.AgentText:
			replied = replied || p.Final
		case conversation.State:
			if replied && p.Agent == "listening" {
				once.Do(func() { close(answered) })
			}
		}
	})
	sess, err := New(Options{LLM: llm, STT: stt, TTS: tts, Mic: mic, Speaker: spk, Events: events, NoBargeIn: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sess.Run(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for _, n := range uploads {
		total += n
	}
	// Each turn: about a second of speech, the pre-roll (0.5 s) and the
	// silence that ends it (0.5 s). The input is over 24 s long.
	seconds := float64(total) / audio.PipelineRate
	if len(uploads) != 2 || seconds < 2 || seconds > 6 {
		t.Fatalf("%d uploads, %.1f s of audio in all; want 2 turns of about 2 s each", len(uploads), seconds)
	}
}

// gatedSource reads its source until after samples, then waits for open.
type gatedSource struct {
	audio.Source
	after, read int
	open        <-chan struct{}
}

func (g *gatedSource) Read(ctx context.Context, p []int16) (int, error) {
	if g.read >= g.after {
		select {
		case <-g.open:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n, err := g.Source.Read(ctx, p)
	g.read += n
	return n, err
}
