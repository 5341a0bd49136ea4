package session

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// speechWAV writes real synthetic speech and silences as a 16 kHz WAV.
func speechWAV(t testing.TB, parts ...any) string { return speechtest.WAV(t, parts...) }

type recorder struct {
	mu     sync.Mutex
	events []conversation.Event
}

func (r *recorder) add(e conversation.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) all() []conversation.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// inProcess runs a session in this process (so the race detector and
// goleak see all of it) against the embedded gateway.
func inProcess(t testing.TB, wav string, local localgw.Options, tune func(*Options)) (*recorder, error) {
	t.Helper()
	rec := &recorder{}
	events := conversation.NewEmitter(rec.add)
	attempts := NewAttempts(events)
	b, err := backend.Open(backend.Options{Kind: backend.Embedded, Local: local,
		Retry: provider.Retry{First: 10 * time.Millisecond, Interval: 10 * time.Millisecond, MaxRetryAfter: 10 * time.Millisecond,
			OnRetry: attempts.OnRetry}}, func(string) string { return "" })
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
	o := Options{LLM: b.LLM, STT: b.STT, TTS: b.TTS, Mic: src, Speaker: spk, Events: events, Attempts: attempts}
	if tune != nil {
		tune(&o)
	}
	sess, err := New(o)
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
	var closing conversation.Close
	replies := 0
	for _, e := range rec.all() {
		kinds = append(kinds, e.Type())
		if c, ok := e.Payload.(conversation.Close); ok {
			closing = c
		}
		if a, ok := e.Payload.(conversation.AgentText); ok && a.Final && !a.Interrupted {
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
	if qe, ok := provider.AsQuota(err); !ok || !qe.IsTerminal() {
		t.Fatalf("Run returned %v", err)
	}
	var fb []conversation.Fallback
	for _, e := range rec.all() {
		if f, ok := e.Payload.(conversation.Fallback); ok {
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
	var fb conversation.Fallback
	for _, e := range rec.all() {
		if f, ok := e.Payload.(conversation.Fallback); ok {
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

func rules(t testing.TB, quotas []string, faults []string) localgw.Options {
	var o localgw.Options
	for _, q := range quotas {
		r, err := localgw.ParseQuota(q)
		if err != nil {
			t.Fatal(err)
		}
		o.Quotas = append(o.Quotas, r)
	}
	for _, f := range faults {
		r, err := localgw.ParseFault(f)
		if err != nil {
			t.Fatal(err)
		}
		o.Faults = append(o.Faults, r)
	}
	return o
}

func payloads[T any](rec *recorder) []T {
	var out []T
	for _, e := range rec.all() {
		if p, ok := e.Payload.(T); ok {
			out = append(out, p)
		}
	}
	return out
}

// The STT socket drops; reopening it fails: counted, then closed, with the
// earcon, the fallback and a close event (no crash).
func TestSTTDropsAndCannotReopen(t *testing.T) {
	wav := speechWAV(t, time.Second, "What time is it?", 2*time.Second)
	local := rules(t, nil, []string{"stt:disconnect", "stt:5xx:after=1"})
	local.STTScript = []string{"what time is it"}
	rec, err := inProcess(t, wav, local, func(o *Options) { o.MaxUnrecoverable = 1 })
	var se *provider.StatusError
	if !errors.As(err, &se) || se.StatusCode != 503 || se.Stage != provider.StageSTT {
		t.Fatalf("Run: %v", err)
	}
	closes := payloads[conversation.Close](rec)
	fb := payloads[conversation.Fallback](rec)
	// The drop's earcon at once, then the clip when the reopen fails.
	if len(closes) != 1 || closes[0].Reason != "error" || len(fb) != 2 || fb[0].Clip != "earcon_failed" || fb[1].Clip != "unavailable" {
		t.Fatalf("close %+v fallback %+v", closes, fb)
	}
}

// Two turns in quick succession while STT answers slowly: both transcripts
// start turns, none is lost.
func TestOverlappingFinalizes(t *testing.T) {
	wav := speechWAV(t, time.Second, "What time is it?", 800*time.Millisecond, "Hello there.", 4*time.Second)
	local := rules(t, nil, []string{"stt:delay=1500ms"})
	local.STTScript = []string{"what time is it", "hello"}
	rec, err := inProcess(t, wav, local, nil)
	if err != nil {
		t.Fatal(err)
	}
	var finals []string
	for _, tr := range payloads[conversation.Transcript](rec) {
		if tr.Final {
			finals = append(finals, tr.Text)
		}
	}
	thinking := 0
	for _, st := range payloads[conversation.State](rec) {
		if st.Agent == "thinking" {
			thinking++
		}
	}
	if !slices.Equal(finals, []string{"what time is it", "hello"}) || thinking != 2 {
		t.Fatalf("finals %q, %d turns", finals, thinking)
	}
}

// attempt counts the retries of one request, not of the session.
func TestAttemptsAreCountedPerRequest(t *testing.T) {
	wav := speechWAV(t, time.Second, "What time is it?", 2500*time.Millisecond, "Hello.", 2*time.Second)
	local := rules(t, []string{"llm:rate:count=2", "llm:credits:after=3"}, nil)
	local.STTScript = []string{"what time is it", "hello"}
	rec, err := inProcess(t, wav, local, nil)
	if !provider.Terminal(err) {
		t.Fatalf("Run: %v", err)
	}
	var attempts []int
	for _, e := range payloads[conversation.Error](rec) {
		attempts = append(attempts, e.Attempt)
	}
	if !slices.Equal(attempts, []int{1, 2, 1}) {
		t.Fatalf("attempts %v: want the rate limit's 1, 2, then the credits' 1", attempts)
	}
}

// A turn that speaks resets the LLM count: fail, succeed, fail stays
// within a tolerance of 1.
func TestSpeakingResetsTheCount(t *testing.T) {
	wav := speechWAV(t, time.Second, "One.", 2*time.Second, "Two.", 3*time.Second, "Three.", 2*time.Second)
	local := rules(t, nil, []string{"llm:5xx:count=4", "llm:5xx:after=5:count=4"})
	local.STTScript = []string{"one", "two", "three"}
	rec, err := inProcess(t, wav, local, func(o *Options) { o.MaxUnrecoverable = 1 })
	if err != nil {
		t.Fatalf("Run: %v (the count should have been reset by the reply in between)", err)
	}
	if c := payloads[conversation.Close](rec); len(c) != 1 || c[0].Reason != "input_ended" {
		t.Fatalf("close %+v", c)
	}
	if n := len(payloads[conversation.Error](rec)); n != 8 {
		t.Fatalf("%d error events, want 2 failed turns x 4 attempts", n)
	}
}

// stuckSTT accepts a stream whose writes never complete.
type stuckSTT struct{}

type stuckStream struct {
	ctx    context.Context
	closed chan struct{}
	once   sync.Once
}

func (stuckSTT) Stream(ctx context.Context) (provider.STTStream, error) {
	return &stuckStream{ctx: ctx, closed: make(chan struct{})}, nil
}
func (s *stuckStream) Write([]int16) error { <-s.closed; return errors.New("closed") }
func (s *stuckStream) Finalize() error     { <-s.closed; return errors.New("closed") }
func (s *stuckStream) Recv() (provider.STTEvent, error) {
	<-s.closed
	return provider.STTEvent{}, io.EOF
}
func (s *stuckStream) Close() error { s.once.Do(func() { close(s.closed) }); return nil }

// Audio dropped because STT fell behind is said, once.
func TestSTTFallingBehindIsReported(t *testing.T) {
	wav := speechWAV(t, 4*time.Second)
	rec, err := inProcess(t, wav, localgw.Options{}, func(o *Options) { o.STT = stuckSTT{} })
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range payloads[conversation.Error](rec) {
		if e.Stage == "stt" && strings.Contains(e.Message, "behind") {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d reports of dropped audio, want 1: %+v", n, payloads[conversation.Error](rec))
	}
}
