package session

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/localgw"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// speechWAV writes real synthetic speech and silences as a 16 kHz WAV.
func speechWAV(t testing.TB, parts ...any) string {
	t.Helper()
	e, err := localgw.NewEspeak()
	if err != nil {
		t.Fatal(err)
	}
	rs, _ := audio.NewResampler(localgw.EspeakRate, audio.PipelineRate)
	var pcm []int16
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			e.Synthesize(context.Background(), v, "en-us", func(s []int16) error { pcm = rs.Process(pcm, s); return nil })
		case time.Duration:
			pcm = append(pcm, make([]int16, int(v.Seconds()*audio.PipelineRate))...)
		}
	}
	path := filepath.Join(t.TempDir(), "in.wav")
	w, _ := audio.CreateWAV(path, audio.Pipeline)
	w.WriteSamples(pcm)
	w.Close()
	return path
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) add(e Event) { r.mu.Lock(); r.events = append(r.events, e); r.mu.Unlock() }

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// inProcess runs a session in this process (so the race detector and
// goleak see all of it) against the embedded gateway.
func inProcess(t testing.TB, wav string, local localgw.Options, tune func(*Options)) (*recorder, error) {
	t.Helper()
	var sess *Session
	b, err := backend.Open(backend.Options{Kind: backend.Embedded, Local: local,
		Retry: pipeline.Retry{OnRetry: func(n int, err error, w time.Duration) {
			if sess != nil {
				sess.OnRetry(n, err, w)
			}
		}}}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	src, err := audio.NewWAVSource(wav, &audio.WAVSourceOptions{Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	spk, err := audio.NewClockSink(audio.Format{SampleRate: 24000, Channels: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer spk.Close()
	rec := &recorder{}
	o := Options{LLM: b.LLM, STT: b.STT, TTS: b.TTS, Mic: src, Speaker: spk, Events: NewEmitter(rec.add)}
	if tune != nil {
		tune(&o)
	}
	sess, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return rec, sess.Run(ctx)
}

func TestConversationInProcess(t *testing.T) {
	wav := speechWAV(t, time.Second, "Help me please.", 1500*time.Millisecond, "What time is it now?", 3*time.Second)
	rec, err := inProcess(t, wav, localgw.Options{STTScript: []string{"help", "what time is it"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var closing Close
	replies := 0
	for _, e := range rec.all() {
		kinds = append(kinds, e.Type())
		if c, ok := e.Payload.(Close); ok {
			closing = c
		}
		if a, ok := e.Payload.(AgentText); ok && a.Final {
			replies++
		}
	}
	if closing.Reason != "input_ended" || replies != 2 {
		t.Fatalf("close %+v after %d replies: %v", closing, replies, kinds)
	}
}

func TestTerminalErrorClosesInProcess(t *testing.T) {
	wav := speechWAV(t, time.Second, "What time is it?", 2*time.Second)
	q, _ := localgw.ParseQuota("llm:credits")
	rec, err := inProcess(t, wav, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}}, nil)
	if qe, ok := pipeline.AsQuota(err); !ok || !qe.IsTerminal() {
		t.Fatalf("Run returned %v", err)
	}
	var fb []Fallback
	for _, e := range rec.all() {
		if f, ok := e.Payload.(Fallback); ok {
			fb = append(fb, f)
		}
	}
	if len(fb) != 1 || fb[0].Clip != "quota" || !fb[0].OK {
		t.Fatalf("fallback %+v", fb)
	}
}

// A speaker that never drains must not hold the close.
type stuckSink struct{ audio.Sink }

func (stuckSink) Drain(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
func (stuckSink) Write(ctx context.Context, p []int16) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func TestCloseIsBoundedWithAHungSpeaker(t *testing.T) {
	wav := speechWAV(t, time.Second, "What time is it?", 2*time.Second)
	q, _ := localgw.ParseQuota("llm:credits")
	start := time.Now()
	rec, err := inProcess(t, wav, localgw.Options{STTScript: []string{"x"}, Quotas: []localgw.QuotaRule{q}}, func(o *Options) {
		o.Speaker = stuckSink{o.Speaker}
	})
	if err == nil {
		t.Fatal("no error")
	}
	var fb Fallback
	for _, e := range rec.all() {
		if f, ok := e.Payload.(Fallback); ok {
			fb = f
		}
	}
	if fb.OK || fb.Error == "" {
		t.Fatalf("the fallback's failure must be reported: %+v", fb)
	}
	// Clip length (about 4 s) plus the 2 s bound, plus the input: well
	// under the test's minute.
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("close took %v", d)
	}
}
