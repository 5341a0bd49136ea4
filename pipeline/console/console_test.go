package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/pipeline/console/consoletest"
	"github.com/voicetui/voicetui/pipeline/conversation"
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

// waitFor waits until an event matches ok, at most d.
func (s *session) waitFor(t testing.TB, what string, d time.Duration, ok func(conversation.Event) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if at, found := s.rec.wallOf(ok); found {
			return at
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v:\n%s", what, d, dump(s.rec))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func agentIs(state string) func(conversation.Event) bool {
	return func(e conversation.Event) bool {
		st, ok := e.Payload.(conversation.State)
		return ok && st.Agent == state
	}
}

func isError(msg string) func(conversation.Event) bool {
	return func(e conversation.Event) bool {
		x, ok := e.Payload.(conversation.Error)
		return ok && strings.Contains(x.Message, msg)
	}
}

func fallbacks(r *recorder, clip string) []conversation.Fallback {
	var out []conversation.Fallback
	for _, f := range payloads[conversation.Fallback](r) {
		if f.Clip == clip {
			out = append(out, f)
		}
	}
	return out
}

// A typed turn that names the agent's tool: the agent runs it (the
// gateway's demo LLM calls an offered tool it is asked for by name), the
// transcript shows the call and its output, and the reply that used it is
// heard.
func TestTypedTurnRunsATool(t *testing.T) {
	g := newGateway(t, localgw.Options{})
	s := talk(t, g, func(o *Options) { o.AnswerWait = 8 * time.Second }, 14*time.Second)
	s.waitFor(t, "the agent listening", 40*time.Second, agentIs("listening"))
	s.conv.Say("please look up order 427")
	if err := s.wait(t, time.Minute); err != nil {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	tools := payloads[conversation.Tool](s.rec)
	if len(tools) != 1 || tools[0].Name != "lookup_order" || tools[0].Arguments != `{"order":"427"}` || !tools[0].OK ||
		tools[0].Output != "order 427 shipped on Monday" {
		t.Fatalf("tools %+v\n%s", tools, dump(s.rec))
	}
	user, replies := finals(s.rec)
	if !slices.Equal(user, []string{"please look up order 427"}) {
		t.Fatalf("user %q", user)
	}
	if strings.Join(replies, " ") != "lookup_order answered: order 427 shipped on Monday" {
		t.Fatalf("replies %q\n%s", replies, dump(s.rec))
	}
	if s.spk.loudAfter(0) < 25 {
		t.Fatal("the reply was not heard")
	}
}

// A tool that fails is shown as failed, with its error.
func TestFailedToolIsShown(t *testing.T) {
	g := newGateway(t, localgw.Options{STTScript: []string{"look up order 9"}})
	s := talk(t, g, func(o *Options) { o.Env = append(o.Env, "AGENT_TOOL_FAILS=1") }, time.Second, "Look up order nine.", 8*time.Second)
	if err := s.wait(t, time.Minute); err != nil {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	tools := payloads[conversation.Tool](s.rec)
	if len(tools) != 1 || tools[0].Name != "lookup_order" || tools[0].OK || !strings.Contains(tools[0].Output, "") {
		t.Fatalf("tools %+v\n%s", tools, dump(s.rec))
	}
}

// The user speaks over the agent's reply. agents-js pauses its speech
// (SPEAKING -> LISTENING) without a message on the wire and clears its
// audio only when the interrupting turn is committed, about 2 s later:
// the speaker must fall silent at the pause, not at the clear.
func TestBargeInSilencesTheAgent(t *testing.T) {
	g := newGateway(t, localgw.Options{STTScript: []string{"tell me a long story about the sea the mountains and the rivers of the north", "stop"}})
	s := talk(t, g, nil, time.Second, "Tell me a long story about the sea, the mountains and the rivers of the north.",
		1500*time.Millisecond, "Stop, stop, please stop now.", 8*time.Second)
	if err := s.wait(t, time.Minute); err != nil {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	// The agent paused: it left speaking while the user spoke over it.
	// From 0.3 s after that until it speaks again (its answer to the
	// interruption), the speaker must be quiet; waiting for the clear
	// (at the interrupting turn's commit) plays it on.
	evs := s.rec.all()
	s.rec.mu.Lock()
	walls := slices.Clone(s.rec.walls)
	s.rec.mu.Unlock()
	var paused, resumed time.Time
	for i, e := range evs {
		st, ok := e.Payload.(conversation.State)
		if !ok {
			continue
		}
		if paused.IsZero() && st.Agent == "listening" && st.User == "speaking" && i > 0 {
			if prev, ok := evs[i-1].Payload.(conversation.State); ok && prev.Agent == "speaking" {
				paused = walls[i]
			}
		}
		if !paused.IsZero() && resumed.IsZero() && st.Agent == "speaking" {
			resumed = walls[i]
		}
	}
	if paused.IsZero() || resumed.IsZero() || resumed.Sub(paused) < 500*time.Millisecond {
		t.Fatalf("no pause of the agent's speech for the user (paused %v, spoke again %v):\n%s", paused, resumed, dump(s.rec))
	}
	from, to := paused.Add(300*time.Millisecond).Sub(s.spk.start), resumed.Sub(s.spk.start)
	if loud := s.spk.loudAfter(from) - s.spk.loudAfter(to); loud > 1 {
		t.Fatalf("%d loud periods in the %v after the agent paused for the user: it was not silenced\n%s", loud, to-from, dump(s.rec))
	}
	t.Logf("silent for %v after the pause, until the agent answered the interruption", (to - from).Round(time.Millisecond))
	interrupted := false
	for _, a := range payloads[conversation.AgentText](s.rec) {
		interrupted = interrupted || a.Interrupted
	}
	if !interrupted {
		t.Fatalf("no reply marked interrupted:\n%s", dump(s.rec))
	}
}

// LLM credits run out. The agent only reports inference.LLM and retries;
// the gateway's refusal, with its body, is here on the first one: the
// quota clip within a second of it, the status pane's hint and category,
// the conversation closed as terminal.
func TestCreditsExhaustedAtTheFirstRefusal(t *testing.T) {
	q, _ := localgw.ParseQuota("llm:credits")
	g := newGateway(t, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}})
	s := talk(t, g, nil, time.Second, "What time is it?", 10*time.Second)
	err := s.wait(t, time.Minute)
	if err == nil {
		t.Fatalf("Run: no error\n%s", dump(s.rec))
	}
	first := g.firstRefusal()
	if first.IsZero() {
		t.Fatal("the gateway refused nothing")
	}
	took, ok := s.spk.firstLoudAfter(first)
	if !ok || took > time.Second {
		t.Fatalf("first sound %v after the first 429 (heard: %v), want <= 1s\n%s", took, ok, dump(s.rec))
	}
	t.Logf("first 429 -> first sound of the clip: %v", took.Round(time.Millisecond))
	var quota *conversation.Error
	for _, e := range payloads[conversation.Error](s.rec) {
		if e.Quota != nil {
			quota = &e
			break
		}
	}
	if quota == nil || quota.Stage != "llm" || !quota.Terminal || quota.Status != 429 || quota.Quota.Category != "MaxGatewayCredits" ||
		!strings.Contains(quota.Quota.Hint, "out of credits") {
		t.Fatalf("quota error %+v\n%s", quota, dump(s.rec))
	}
	if fb := fallbacks(s.rec, "quota"); len(fb) != 1 || !fb[0].OK || fb[0].Reason != "quota_exhausted" {
		t.Fatalf("clip %+v\n%s", payloads[conversation.Fallback](s.rec), dump(s.rec))
	}
	if c := closeOf(t, s.rec); c.Reason != "error" || c.Error == nil || c.Error.Quota == nil {
		t.Fatalf("close %+v", c)
	}
	if s.conv.agent.Load().waitExit(ctxTimeout(t, 5*time.Second)) == false {
		t.Fatal("the agent still runs after the close")
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The LLM is rate-limited once: said with its category, the earcon at
// most, then the answer; never the clip.
func TestRateLimitIsRiddenOut(t *testing.T) {
	q, _ := localgw.ParseQuota("llm:rate:count=1")
	g := newGateway(t, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}})
	s := talk(t, g, nil, time.Second, "What time is it?", 8*time.Second)
	if err := s.wait(t, time.Minute); err != nil {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	if len(payloads[conversation.Metrics](s.rec)) == 0 {
		t.Fatalf("the agent never answered:\n%s", dump(s.rec))
	}
	for _, f := range payloads[conversation.Fallback](s.rec) {
		if f.Clip != "earcon_failed" {
			t.Fatalf("a clip for a rate limit the agent rode out: %+v\n%s", f, dump(s.rec))
		}
	}
	var rate *conversation.Error
	for _, e := range payloads[conversation.Error](s.rec) {
		if e.Quota != nil {
			rate = &e
		}
	}
	if rate == nil || rate.Terminal || !rate.Retryable || rate.Quota.Category != "MaxConcurrentGatewayLLMRpm" {
		t.Fatalf("rate error %+v\n%s", rate, dump(s.rec))
	}
	if c := closeOf(t, s.rec); c.Reason != "input_ended" {
		t.Fatalf("close %+v", c)
	}
}

// The agent's process is SIGKILLed after its first answer: the clip, and
// the close, at once (the socket and the process end together here).
func TestAgentKilledIsNoticed(t *testing.T) {
	g := newGateway(t, localgw.Options{STTScript: []string{"what time is it"}})
	s := talk(t, g, nil, time.Second, "What time is it?", 20*time.Second)
	s.waitFor(t, "an answer", 40*time.Second, func(e conversation.Event) bool { _, ok := e.Payload.(conversation.Metrics); return ok })
	s.waitFor(t, "the agent listening again", 20*time.Second, func(e conversation.Event) bool {
		a, ok := e.Payload.(conversation.AgentText)
		return ok && a.Final
	})
	p := s.conv.agent.Load()
	killed := time.Now()
	if err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := s.wait(t, 20*time.Second)
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "was killed") {
		t.Fatalf("Run: %v\n%s", err, dump(s.rec))
	}
	took, ok := s.spk.firstLoudAfter(killed)
	if !ok || took > time.Second {
		t.Fatalf("first sound %v after the kill (heard %v)\n%s", took, ok, dump(s.rec))
	}
	t.Logf("kill -> first sound of the clip: %v", took.Round(time.Millisecond))
	if fb := fallbacks(s.rec, "unavailable"); len(fb) != 1 || !fb[0].OK {
		t.Fatalf("clip %+v", payloads[conversation.Fallback](s.rec))
	}
}

// An agent whose entry never starts a session never connects: a bounded
// wait, then a clear error with its last lines.
func TestAgentThatNeverConnects(t *testing.T) {
	dir, _ := consoletest.Agent(t)
	file := filepath.Join(dir, "never-connects.mjs")
	src := `import { fileURLToPath } from 'node:url';
import { ServerOptions, cli, defineAgent } from '@livekit/agents';
export default defineAgent({ entry: async () => {
  await new Promise((r) => setTimeout(r, 1500)); // after agents-js's own start-up lines: its last
  console.log('entry: waiting forever');
  await new Promise(() => {});
} });
cli.runApp(new ServerOptions({ agent: fileURLToPath(import.meta.url) }));
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	s := talk(t, nil, func(o *Options) { o.Command = Command([]string{file}); o.ConnectWait = 5 * time.Second }, 10*time.Second)
	err := s.wait(t, 30*time.Second)
	var ce *Error
	if !errors.As(err, &ce) || ce.Message != "the agent did not connect within 5s" || !strings.Contains(ce.Hint, "AgentSession") ||
		!strings.Contains(ce.Hint, "waiting forever") {
		t.Fatalf("Run: %v (%+v)\n%s", err, ce, dump(s.rec))
	}
	if fb := fallbacks(s.rec, "unavailable"); len(fb) != 1 || !fb[0].OK {
		t.Fatalf("clip %+v", payloads[conversation.Fallback](s.rec))
	}
}

// An agent where @livekit/agents is not installed exits at once: the
// error says the npm command.
func TestAgentWithoutAgentsJS(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agent.mjs")
	if err := os.WriteFile(file, consoletest.AgentFile(), 0o644); err != nil {
		t.Fatal(err)
	}
	s := talk(t, nil, func(o *Options) { o.Command = Command([]string{file}); o.Dir = dir }, 10*time.Second)
	err := s.wait(t, 30*time.Second)
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Message, "exited with status 1 before it connected") ||
		!strings.Contains(ce.Hint, "npm install @livekit/agents@1.9.0") {
		t.Fatalf("Run: %v (%+v)\n%s", err, ce, dump(s.rec))
	}
}

func TestCheckSaysWhatIsMissing(t *testing.T) {
	for _, c := range []struct {
		argv []string
		want string
	}{
		{nil, "which agent? voicetui console -- node agent.mjs"},
		{[]string{"no-such-program-here"}, `cannot run "no-such-program-here"`},
		{Command([]string{"/nonexistent/agent.mjs"}), "the agent file /nonexistent/agent.mjs is not there"},
	} {
		err := Check(c.argv, "")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Check(%q) = %v, want %q", c.argv, err, c.want)
		}
	}
	if got := Command([]string{"agent.mjs"}); !slices.Equal(got, []string{"node", "agent.mjs"}) {
		t.Errorf("Command(agent.mjs) = %q", got)
	}
}
