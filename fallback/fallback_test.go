package fallback

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func quota(stage provider.Stage, category string) error {
	body := fmt.Sprintf(`{"type":"inference_quota_exceeded","category":%q,"quota_type":%q,"hint":"h"}`, category, stage)
	return provider.FromResponse(stage, 429, http.Header{}, []byte(body))
}

func TestDecide(t *testing.T) {
	llmCredits := quota(provider.StageLLM, "MaxGatewayCredits")
	ttsCredits := quota(provider.StageTTS, "MaxGatewayCredits")
	rate := quota(provider.StageLLM, "MaxConcurrentGatewayLLMRpm")
	badKey := provider.FromResponse(provider.StageSTT, 401, http.Header{}, nil)
	conn := &provider.ConnectionError{Stage: provider.StageTTS, Op: "read", Err: errors.New("reset")}
	msg := Options{ErrorMessage: "Sorry, I have to stop."}
	cases := []struct {
		name string
		err  error
		st   State
		opts Options
		want Decision
	}{
		{"llm credits", llmCredits, State{}, Options{}, Decision{Clip: Quota, Reason: "quota_exhausted"}},
		{"tts credits", ttsCredits, State{}, Options{}, Decision{Clip: Quota, Reason: "quota_exhausted"}},
		{"wrapped", fmt.Errorf("turn: %w", llmCredits), State{}, Options{}, Decision{Clip: Quota, Reason: "quota_exhausted"}},
		{"rate limit past the tolerance", rate, State{}, Options{}, Decision{Clip: Unavailable, Reason: "unavailable"}},
		{"bad key", badKey, State{}, Options{}, Decision{Clip: Unavailable, Reason: "credentials"}},
		{"untyped", errors.New("boom"), State{}, Options{}, Decision{Clip: Unavailable, Reason: "unavailable"}},
		{"message, llm failed: spoken", llmCredits, State{}, msg, Decision{Text: msg.ErrorMessage, Reason: "quota_exhausted"}},
		{"message, tts failed: clip", ttsCredits, State{}, msg, Decision{Clip: Quota, Reason: "quota_exhausted"}},
		{"message, tts failed earlier: clip", rate, State{TTSFailed: true}, msg, Decision{Clip: Unavailable, Reason: "unavailable"}},
		{"message, tts connection lost: clip", conn, State{}, msg, Decision{Clip: Unavailable, Reason: "unavailable"}},
		{"no error audio", llmCredits, State{}, Options{NoErrorAudio: true}, Decision{Reason: "quota_exhausted"}},
		{"no error audio beats message", llmCredits, State{}, Options{NoErrorAudio: true, ErrorMessage: "x"}, Decision{Reason: "quota_exhausted"}},
	}
	for _, c := range cases {
		if got := Decide(c.err, c.st, c.opts); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestBundledClipsAreSpeech(t *testing.T) {
	for _, clip := range []Clip{Quota, Unavailable} {
		pcm, err := Samples(clip, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if d := float64(len(pcm)) / audio.PipelineRate; d < 1.5 || d > 6 {
			t.Errorf("%s: %.1f s", clip, d)
		}
		if l := audio.RMS(pcm); l < -30 {
			t.Errorf("%s: %.1f dBFS is near silence", clip, l)
		}
	}
	own := []int16{1, 2, 3}
	if pcm, _ := Samples(Quota, Options{ErrorAudio: own}); len(pcm) != 3 {
		t.Error("ErrorAudio does not replace the clip")
	}
}

// memSink is a speaker that keeps what it is given.
type memSink struct {
	rate    int
	got     []int16
	writes  []int // samples in each write
	drained bool
	fail    error
}

func (m *memSink) Format() audio.Format { return audio.Format{SampleRate: m.rate, Channels: 1} }
func (m *memSink) Write(ctx context.Context, p []int16) (int, error) {
	if m.fail != nil {
		return 0, m.fail
	}
	m.writes = append(m.writes, len(p))
	m.got = append(m.got, p...)
	return len(p), nil
}
func (m *memSink) Flush()                          {}
func (m *memSink) Drain(ctx context.Context) error { m.drained = true; return ctx.Err() }
func (m *memSink) Close() error                    { return nil }

func TestPlay(t *testing.T) {
	pcm, err := Samples(Unavailable, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &memSink{rate: 48000}
	if err := Play(context.Background(), s, pcm); err != nil {
		t.Fatal(err)
	}
	if r := float64(len(s.got)) / float64(len(pcm)); r < 2.99 || r > 3.02 || !s.drained {
		t.Fatalf("%d samples at 48 kHz for %d at 16 kHz, drained %v", len(s.got), len(pcm), s.drained)
	}
	// The first sound leaves before the rest of the clip is converted, and
	// is what a sleeping speaker takes at once (180 ms: more and it waits).
	if len(s.writes) < 2 {
		t.Fatalf("the %d-sample clip went in %d writes", len(pcm), len(s.writes))
	}
	if d := s.Format().Duration(s.writes[0]); d < 180*time.Millisecond || d > 200*time.Millisecond {
		t.Errorf("first write: %v of audio, want 180 to 200 ms", d)
	}
	broken := &memSink{rate: 16000, fail: audio.ErrClosed}
	if err := Play(context.Background(), broken, pcm); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("a failing speaker: %v", err)
	}
}
