package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/console/consoletest"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
)

// Console mode against a peer nobody here wrote: a real agents-js 1.9.0
// agent from npm, run in its console mode, its inference on the embedded
// gateway in this process. Everything is loopback TCP.

func TestMain(m *testing.M) {
	unlock, err := pulsetest.LockRealtime() // the agent and the paced input need the CPU
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	unlock()
	os.Exit(code)
}

// heard is the speaker: a clock that records what it played, with when.
type heard struct {
	mu    sync.Mutex
	start time.Time
	loud  []time.Duration // each loud 20 ms, since start
}

func (h *heard) record(p []int16) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if audio.RMS(p) > -40 {
		h.loud = append(h.loud, time.Since(h.start))
	}
	return nil
}

// loudAfter counts the loud 20 ms periods after d.
func (h *heard) loudAfter(d time.Duration) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.loud {
		if l > d {
			n++
		}
	}
	return n
}

// firstLoudAfter is how long after at the speaker first played sound.
func (h *heard) firstLoudAfter(at time.Time) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	from := at.Sub(h.start)
	for _, l := range h.loud {
		if l >= from {
			return l - from, true
		}
	}
	return 0, false
}

type recorder struct {
	mu     sync.Mutex
	events []conversation.Event
	walls  []time.Time
}

func (r *recorder) add(e conversation.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	r.walls = append(r.walls, time.Now())
}

func (r *recorder) all() []conversation.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// wallOf is when the first event matching ok came.
func (r *recorder) wallOf(ok func(conversation.Event) bool) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, e := range r.events {
		if ok(e) {
			return r.walls[i], true
		}
	}
	return time.Time{}, false
}

func payloads[T any](r *recorder) []T {
	var out []T
	for _, e := range r.all() {
		if p, ok := e.Payload.(T); ok {
			out = append(out, p)
		}
	}
	return out
}

func dump(r *recorder) string {
	var b strings.Builder
	for _, e := range r.all() {
		j, _ := e.MarshalJSON()
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// gateway is an embedded gateway for the agent, its refusals told to the
// conversation.
type gateway struct {
	*localgw.Server
	refusals chan localgw.Refused
	mu       sync.Mutex
	first    time.Time // the first refusal
}

func newGateway(t testing.TB, o localgw.Options) *gateway {
	t.Helper()
	g := &gateway{refusals: make(chan localgw.Refused, 16)}
	o.TokenDelay = -1
	o.OnRefused = func(rf localgw.Refused) {
		g.mu.Lock()
		if g.first.IsZero() {
			g.first = rf.At
		}
		g.mu.Unlock()
		select {
		case g.refusals <- rf:
		default:
		}
	}
	var err error
	if g.Server, err = localgw.New(o); err != nil {
		t.Fatal(err)
	}
	if err := g.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Close(ctx)
	})
	return g
}

func (g *gateway) firstRefusal() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.first
}

// session is one console conversation under test.
type session struct {
	conv *Conversation
	rec  *recorder
	spk  *heard
	log  *strings.Builder
	done chan error
	quit func()
}

// agentEnv is the agent's environment: the gateway's URL and credentials,
// nothing of the test's LIVEKIT_* or AGENT_*.
func agentEnv(g *gateway, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIVEKIT_") && !strings.HasPrefix(kv, "AGENT_") {
			env = append(env, kv)
		}
	}
	if g != nil {
		env = append(env, "LIVEKIT_INFERENCE_URL="+g.URL(), "LIVEKIT_API_KEY="+localgw.DefaultKey, "LIVEKIT_API_SECRET="+localgw.DefaultSecret,
			"LIVEKIT_INFERENCE_API_KEY="+localgw.DefaultKey, "LIVEKIT_INFERENCE_API_SECRET="+localgw.DefaultSecret)
	}
	return append(env, extra...)
}

type lockedLog struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// talk runs the console agent fed with the speech of parts (strings are
// spoken by espeak-ng, durations are silence); it returns at once.
func talk(t testing.TB, g *gateway, tune func(*Options), parts ...any) *session {
	t.Helper()
	dir, file := consoletest.Agent(t)
	mic, err := audio.NewWAVSource(speechtest.WAV(t, parts...), &audio.WAVSourceOptions{Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mic.Close() })
	s := &session{rec: &recorder{}, spk: &heard{}, log: &strings.Builder{}, done: make(chan error, 1)}
	clock, err := audio.NewClockSink(audio.Format{SampleRate: audio.PipelineRate, Channels: 1}, s.spk.record)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clock.Close() })
	log := &lockedLog{b: s.log}
	o := Options{Command: Command([]string{file}), Dir: dir, Env: agentEnv(g, "NO_COLOR=1"), Log: log,
		Mic: mic, HoldInput: true, Speaker: clock, Events: conversation.NewEmitter(s.rec.add)}
	if g != nil {
		o.Refusals = g.refusals
	}
	if tune != nil {
		tune(&o)
	}
	s.conv, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	s.quit = cancel
	s.spk.start = time.Now()
	go func() { s.done <- s.conv.Run(ctx) }()
	t.Cleanup(func() {
		if t.Failed() {
			log.mu.Lock()
			t.Logf("agent log (last 6000 bytes):\n%s", lastBytes(s.log.String(), 6000))
			log.mu.Unlock()
		}
	})
	return s
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// wait waits for Run to return, at most d.
func (s *session) wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.conv.Wait()
		return err
	case <-time.After(d):
		t.Fatalf("Run still going after %v; events:\n%s", d, dump(s.rec))
		return nil
	}
}

func closeOf(t *testing.T, r *recorder) conversation.Close {
	t.Helper()
	c := payloads[conversation.Close](r)
	if len(c) != 1 {
		t.Fatalf("%d close events:\n%s", len(c), dump(r))
	}
	return c[0]
}

func finals(r *recorder) (user, agent []string) {
	for _, tr := range payloads[conversation.Transcript](r) {
		if tr.Final {
			user = append(user, tr.Text)
		}
	}
	for _, a := range payloads[conversation.AgentText](r) {
		if a.Final {
			agent = append(agent, a.Text)
		}
	}
	return user, agent
}

func TestTwoSpokenTurns(t *testing.T) {
	g := newGateway(t, localgw.Options{STTScript: []string{"what time is it", "thank you goodbye"}})
	s := talk(t, g, nil, time.Second, "What time is it?", 3*time.Second, "Thank you, goodbye.", 4*time.Second)
	if err := s.wait(t, time.Minute); err != nil {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	user, replies := finals(s.rec)
	if !slices.Equal(user, []string{"what time is it", "thank you goodbye"}) {
		t.Fatalf("user transcripts %q\n%s", user, dump(s.rec))
	}
	if len(replies) != 2 || !strings.HasPrefix(replies[0], "It is ") || replies[1] != "Goodbye!" {
		t.Fatalf("agent replies %q\n%s", replies, dump(s.rec))
	}
	states := map[string]int{}
	for _, st := range payloads[conversation.State](s.rec) {
		states[st.Agent]++
	}
	if states["thinking"] < 2 || states["speaking"] < 2 {
		t.Fatalf("agent states %v\n%s", states, dump(s.rec))
	}
	if m := payloads[conversation.Metrics](s.rec); len(m) != 2 || m[0].E2EMs <= 0 || m[0].E2EMs > 5000 {
		t.Fatalf("metrics %+v", m)
	}
	if n := s.spk.loudAfter(0); n < 25 {
		t.Fatalf("%d loud periods at the speaker", n)
	}
	if c := closeOf(t, s.rec); c.Reason != "input_ended" {
		t.Fatalf("close %+v", c)
	}
	if e := payloads[conversation.Error](s.rec); len(e) != 0 {
		t.Fatalf("errors %+v", e)
	}
	if u := payloads[conversation.Usage](s.rec); len(u) == 0 || u[len(u)-1].LLMOutputTokens == 0 {
		t.Fatalf("usage %+v", u)
	}
}

var _ = errors.New
