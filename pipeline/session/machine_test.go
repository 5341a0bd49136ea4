package session

import (
	"context"
	"errors"
	"io"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// The session's state machine with scripted providers and microphone, on
// testing/synctest's fake clock: every goroutine of a test runs in a
// bubble whose time advances only when all of them wait, so timeouts of
// seconds take microseconds and timings are exact. (Go's synctest is the
// injectable clock: the session keeps using the time package.) The
// end-to-end tests in this package and in cmd/voicetui stay the proof
// that the real providers and devices work.

// rig is one session under test.
type rig struct {
	llm *pipelinetest.LLM
	stt *pipelinetest.STT
	tts *pipelinetest.TTS
	mic *pipelinetest.Mic
	rec *recorder

	start time.Time
	mu    sync.Mutex
	loud  []time.Duration // when each loud 20 msec left the speaker, since start
}

func newRig(script ...pipelinetest.Segment) *rig {
	return &rig{llm: &pipelinetest.LLM{}, stt: &pipelinetest.STT{}, tts: &pipelinetest.TTS{},
		mic: &pipelinetest.Mic{Script: script}, rec: &recorder{}}
}

// run runs the session until it closes or ctx ends; call it inside a
// synctest bubble.
func (r *rig) run(t *testing.T, ctx context.Context, tune func(*Options)) error {
	t.Helper()
	r.start = time.Now()
	spk, err := audio.NewClockSink(audio.Format{SampleRate: audio.PipelineRate, Channels: 1}, func(p []int16) error {
		if audio.RMS(p) > -40 {
			r.mu.Lock()
			r.loud = append(r.loud, time.Since(r.start))
			r.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer spk.Close()
	events := conversation.NewEmitter(r.rec.add)
	o := Options{LLM: r.llm, STT: r.stt, TTS: r.tts, Mic: r.mic, Speaker: spk, Events: events}
	if tune != nil {
		tune(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s.Run(ctx)
}

// heard returns when sound left the speaker.
func (r *rig) heard() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.loud)
}

// at returns when the first event matching ok came, since start.
func (r *rig) at(ok func(conversation.Event) bool) (time.Duration, bool) {
	for _, e := range r.rec.all() {
		if ok(e) {
			return e.T, true
		}
	}
	return 0, false
}

func finals(rec *recorder) []string {
	var out []string
	for _, tr := range payloads[conversation.Transcript](rec) {
		if tr.Final {
			out = append(out, tr.Text)
		}
	}
	return out
}

func replies(rec *recorder) []conversation.AgentText {
	var out []conversation.AgentText
	for _, a := range payloads[conversation.AgentText](rec) {
		if a.Final {
			out = append(out, a)
		}
	}
	return out
}

func closeOf(t *testing.T, rec *recorder) conversation.Close {
	t.Helper()
	c := payloads[conversation.Close](rec)
	if len(c) != 1 {
		t.Fatalf("%d close events", len(c))
	}
	return c[0]
}

var (
	sec       = time.Second
	msec      = time.Millisecond
	serverErr = func(stage provider.Stage) error {
		return provider.FromResponse(stage, http.StatusServiceUnavailable, nil, []byte(`{"error":"busy"}`))
	}
	creditsErr = func(stage provider.Stage) error {
		return provider.FromResponse(stage, http.StatusTooManyRequests, nil, []byte(pipelinetest.QuotaBody(stage.String(), "MaxGatewayCredits")))
	}
)

func TestMachineTwoTurns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(sec), pipelinetest.Voice(sec), pipelinetest.Silence(3*sec), pipelinetest.Voice(sec), pipelinetest.Silence(3*sec))
		words := []string{"one", "two"}
		r.stt.Answer = func(n int) pipelinetest.Finalize { return pipelinetest.Finalize{Text: words[n-1]} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if f := finals(r.rec); !slices.Equal(f, words) {
			t.Fatalf("finals %q", f)
		}
		if got := replies(r.rec); len(got) != 2 || got[0].Text != "Hello there." {
			t.Fatalf("replies %+v", got)
		}
		calls := r.llm.Calls()
		if len(calls) != 2 || calls[1][len(calls[1])-1].Content != "two" || calls[1][2].Role != "assistant" {
			t.Fatalf("LLM calls %+v", calls)
		}
		// Voice ends at 2 s; the 0.5 s of silence that ends the turn,
		// then the reply: nothing else takes time on a fake clock.
		if h := r.heard(); len(h) == 0 || h[0] < 2500*msec || h[0] > 2600*msec {
			t.Fatalf("first reply sound at %v", h)
		}
		// End of speech -> first audio is the end-of-turn silence itself.
		if m := payloads[conversation.Metrics](r.rec); len(m) != 2 || m[0].E2EMs < 500 || m[0].E2EMs > 520 || m[0].EOUMs != 500 {
			t.Fatalf("metrics %+v", m)
		}
		if c := closeOf(t, r.rec); c.Reason != "input_ended" {
			t.Fatalf("close %+v", c)
		}
	})
}

// A finalize answered within the wait starts the turn when it comes.
func TestMachineFinalizeAnsweredLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(6*sec))
		r.stt.Answer = func(int) pipelinetest.Finalize { return pipelinetest.Finalize{Text: "slow", Delay: 2 * sec} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		thinking, ok := r.at(func(e conversation.Event) bool {
			s, ok := e.Payload.(conversation.State)
			return ok && s.Agent == "thinking"
		})
		if !ok || thinking < 3450*msec || thinking > 3550*msec {
			t.Fatalf("thinking at %v (voice ended at 1 s, finalize at 1.5 s, answered 2 s later)", thinking)
		}
		if m := payloads[conversation.Metrics](r.rec); len(m) != 1 || m[0].STTMs < 1990 || m[0].STTMs > 2010 {
			t.Fatalf("metrics %+v", m)
		}
	})
}

// earconAfter reports whether the turn-failed earcon was played (its
// event) and heard (sound at the speaker) after at.
func earconAfter(r *rig, at time.Duration) bool {
	played := false
	for _, f := range payloads[conversation.Fallback](r.rec) {
		played = played || f.Clip == "earcon_failed" && f.OK
	}
	for _, h := range r.heard() {
		if played && h >= at {
			return true
		}
	}
	return false
}

// errorOf is the first error event of stage, and when it came.
func errorOf(r *rig, stage string) (conversation.Error, time.Duration, bool) {
	for _, e := range r.rec.all() {
		if x, ok := e.Payload.(conversation.Error); ok && x.Stage == stage {
			return x, e.T, true
		}
	}
	return conversation.Error{}, 0, false
}

// A finalize never answered is a failed STT request after FinalizeWait:
// an error event, counted, the earcon, and a new stream; the session goes
// on.
func TestMachineFinalizeNeverAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(8*sec))
		r.stt.Answer = func(int) pipelinetest.Finalize { return pipelinetest.Finalize{Never: true} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		e, at, ok := errorOf(r, "stt")
		// Voice ends at 1 s, the turn at 1.5 s, the finalize's wait ends 3 s later.
		if !ok || !e.Retryable || e.Terminal || !strings.Contains(e.Message, "no answer within 3s") || at < 4400*msec || at > 4600*msec {
			t.Fatalf("error %+v at %v\n", e, at)
		}
		if !earconAfter(r, at) {
			t.Fatal("the earcon was not heard")
		}
		if r.stt.Opened() != 2 || len(r.llm.Calls()) != 0 {
			t.Fatalf("%d streams, %d LLM calls", r.stt.Opened(), len(r.llm.Calls()))
		}
		if c := closeOf(t, r.rec); c.Reason != "input_ended" {
			t.Fatalf("close %+v", c)
		}
	})
}

// The input ends while the final transcript is still owed (the user
// spoke last, then the file or the microphone ended): the watchdog's
// earcon is heard to its end before the session closes. (The close once
// flushed the speaker under it and still reported it played.)
func TestMachineEarconHeardWhenTheInputEndsFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(sec))
		r.stt.Answer = func(int) pipelinetest.Finalize { return pipelinetest.Finalize{Never: true} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		_, at, ok := errorOf(r, "stt")
		if !ok || !earconAfter(r, at) {
			t.Fatalf("the earcon was not heard (error at %v: %v)", at, ok)
		}
		if c := closeOf(t, r.rec); c.Reason != "input_ended" {
			t.Fatalf("close %+v", c)
		}
	})
}

// A failed STT stream whose server is slow to close it: the earcon does
// not wait for the close (it once did, a second on the embedded gateway).
func TestMachineSTTEarconDoesNotWaitForTheClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(8*sec))
		r.stt.Answer = func(int) pipelinetest.Finalize { return pipelinetest.Finalize{Never: true} }
		r.stt.CloseDelay = sec
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		_, at, ok := errorOf(r, "stt")
		if !ok {
			t.Fatal("no STT error")
		}
		for _, h := range r.heard() {
			if h >= at {
				// The speaker's clock plays in 20 ms periods.
				if h-at > 60*msec {
					t.Fatalf("the earcon was first heard %v after the failure", h-at)
				}
				return
			}
		}
		t.Fatal("the earcon was not heard")
	})
}

// An answer that comes after the finalize's wait is on a stream already
// given up: it never joins the next turn's prompt.
func TestMachineFinalizeAnsweredAfterTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(8*sec), pipelinetest.Voice(sec), pipelinetest.Silence(3*sec))
		r.stt.Answer = func(n int) pipelinetest.Finalize {
			if n == 1 {
				return pipelinetest.Finalize{Text: "late", Delay: DefaultFinalizeWait + 2*sec}
			}
			return pipelinetest.Finalize{Text: "second"}
		}
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		calls := r.llm.Calls()
		if len(calls) != 1 || calls[0][len(calls[0])-1].Content != "second" {
			t.Fatalf("LLM calls %+v", calls)
		}
		if slices.Contains(finals(r.rec), "late") {
			t.Fatalf("the late transcript was shown: %q", finals(r.rec))
		}
	})
}

// The LLM's stream stays open and says nothing (keepalives only): after
// AnswerWait the turn fails, is counted, and the earcon is heard.
func TestMachineLLMSaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(14*sec))
		r.llm.Reply = func(int) pipelinetest.Reply { return pipelinetest.Reply{Stall: true} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		e, at, ok := errorOf(r, "llm")
		if !ok || !strings.Contains(e.Message, "no answer within 10s") || at < 11400*msec || at > 11600*msec {
			t.Fatalf("error %+v at %v", e, at)
		}
		if !earconAfter(r, at) {
			t.Fatal("the earcon was not heard")
		}
	})
}

// A rate limit the provider rides out (three retries of 4 s: longer than
// the LLM's 10 s to answer) is not the LLM's silence: the watchdog gives
// each attempt its time, and the reply comes.
func TestMachineRetriesAreNotTheLLMsSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(20*sec))
		r.llm.Reply = func(int) pipelinetest.Reply {
			return pipelinetest.Reply{Text: "Hello there.", Retries: []time.Duration{4 * sec, 4 * sec, 4 * sec}}
		}
		tune := func(o *Options) {
			o.Attempts = NewAttempts(o.Events)
			r.llm.OnRetry = o.Attempts.OnRetry
		}
		if err := r.run(t, context.Background(), tune); err != nil {
			t.Fatal(err)
		}
		retries := 0
		for _, e := range payloads[conversation.Error](r.rec) {
			if strings.Contains(e.Message, "no answer") {
				t.Fatalf("timed out while the provider waited to retry: %+v", e)
			}
			if e.RetryInMs > 0 {
				retries++
			}
		}
		if got := replies(r.rec); retries != 3 || len(got) != 1 || got[0].Text != "Hello there." {
			t.Fatalf("%d retries, replies %+v", retries, got)
		}
	})
}

// The TTS socket stays open and sends no audio (keepalives only).
func TestMachineTTSSaysNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(14*sec))
		r.tts.Speak = func(int) pipelinetest.Speech { return pipelinetest.Speech{Stall: true} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		e, at, ok := errorOf(r, "tts")
		if !ok || !strings.Contains(e.Message, "no answer within 10s") || at < 11400*msec || at > 11700*msec {
			t.Fatalf("error %+v at %v", e, at)
		}
		if !earconAfter(r, at) {
			t.Fatal("the earcon was not heard")
		}
	})
}

// Audio stops mid-utterance: the rest is owed, the watchdog fires.
func TestMachineAudioStopsMidUtterance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(14*sec))
		r.tts.Speak = func(int) pipelinetest.Speech { return pipelinetest.Speech{StallAfter: 5} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		e, at, ok := errorOf(r, "tts")
		if !ok || !strings.Contains(e.Message, "no answer within 10s") {
			t.Fatalf("error %+v at %v", e, at)
		}
		// The first 100 ms were heard at 1.5 s; nothing for 10 s after.
		if at < 11400*msec || at > 11800*msec || !earconAfter(r, at) {
			t.Fatalf("error at %v; heard %v", at, r.heard())
		}
	})
}

// A dropped STT stream is reported, reopened, and the next turn works.
func TestMachineSTTReconnects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(2*sec), pipelinetest.Voice(sec), pipelinetest.Silence(3*sec))
		drop := &provider.ConnectionError{Stage: provider.StageSTT, Op: "read", Err: errors.New("connection reset")}
		writers := make(chan int, 1)
		go func() {
			time.Sleep(sec)
			r.stt.Fail(drop)
			time.Sleep(sec / 2)
			synctest.Wait()
			writers <- goroutinesIn("session.(*run).writeSTT")
		}()
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if n := <-writers; n != 1 {
			t.Fatalf("%d STT writers after the reconnect; the old stream's must end with it", n)
		}
		errs := payloads[conversation.Error](r.rec)
		if r.stt.Opened() != 2 || len(errs) != 1 || errs[0].Stage != "stt" || !errs[0].Retryable {
			t.Fatalf("%d streams, errors %+v", r.stt.Opened(), errs)
		}
		if len(replies(r.rec)) != 1 {
			t.Fatalf("replies %+v", replies(r.rec))
		}
	})
}

// A stream that cannot be reopened closes the session past the tolerance,
// with the fallback first.
func TestMachineSTTCannotReopen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(2 * sec))
		r.mic.Hold = true
		r.stt.Open = func(n int) error {
			if n > 1 {
				return serverErr(provider.StageSTT)
			}
			return nil
		}
		go func() {
			time.Sleep(sec)
			r.stt.Fail(&provider.ConnectionError{Stage: provider.StageSTT, Op: "read", Err: errors.New("reset")})
		}()
		err := r.run(t, context.Background(), func(o *Options) { o.MaxUnrecoverable = 2 })
		var se *provider.StatusError
		if !errors.As(err, &se) || se.StatusCode != 503 {
			t.Fatalf("Run: %v", err)
		}
		// The drop (1), a refused reopen (2), and a second refusal, the
		// third error, exceeds the tolerance of 2.
		if n := len(payloads[conversation.Error](r.rec)); r.stt.Opened() != 3 || n != 3 {
			t.Fatalf("%d streams asked for, %d errors", r.stt.Opened(), n)
		}
		// The drop is heard at once (the earcon, before the reopen is
		// tried), the close when the reopens are given up (the clip).
		fb := payloads[conversation.Fallback](r.rec)
		if c := closeOf(t, r.rec); c.Reason != "error" || len(fb) != 2 || fb[0].Clip != "earcon_failed" || fb[0].Reason != "stt_failed" ||
			fb[1].Clip != "unavailable" || !fb[0].OK || !fb[1].OK {
			t.Fatalf("close %+v, fallback %+v", c, fb)
		}
	})
}

// Voice over the agent for BargeIn interrupts it: the speaker falls
// silent at once, the reply is marked, and the user's turn is answered.
func TestMachineBargeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Voice 0-1 s; the reply starts at 1.5 s and would last 6 s; the
		// user speaks again from 3 s.
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(2*sec), pipelinetest.Voice(sec), pipelinetest.Silence(4*sec))
		r.llm.Reply = func(n int) pipelinetest.Reply {
			if n == 1 {
				return pipelinetest.Reply{Text: "One. Two. Three."}
			}
			return pipelinetest.Reply{Text: "Yes?"}
		}
		r.tts.Speak = func(int) pipelinetest.Speech { return pipelinetest.Speech{PerSentence: 2 * sec} }
		if err := r.run(t, context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		// The whole first reply is known before it is spoken; then it is
		// cut, then the second turn's reply.
		got := replies(r.rec)
		if len(got) != 3 || got[0].Interrupted || !got[1].Interrupted || got[2].Text != "Yes?" || got[2].Interrupted {
			t.Fatalf("replies %+v", got)
		}
		cut, _ := r.at(func(e conversation.Event) bool {
			a, ok := e.Payload.(conversation.AgentText)
			return ok && a.Interrupted
		})
		if cut < 3500*msec || cut > 3520*msec {
			t.Fatalf("interrupted at %v: want 0.5 s after the voice began at 3 s", cut)
		}
		// Nothing of the first reply after the cut (the answer to the
		// second turn starts at 4.5 s).
		for _, h := range r.heard() {
			if h > cut+40*msec && h < 4500*msec {
				t.Fatalf("sound at %v after the interruption at %v", h, cut)
			}
		}
		if calls := r.llm.Calls(); len(calls) != 2 || !strings.Contains(calls[1][2].Content, "[cut short") {
			t.Fatalf("history %+v", calls)
		}
	})
}

// With the echo taken out, a user talking quietly over the agent in a
// quiet room stops it; once the canceller has failed, the threshold is
// raised again while the agent speaks (its echo would stop it), and the
// same voice does not. The room's noise (-58 dBFS, a laptop's microphone
// in a quiet room) sets the threshold: 12 dB over it, or over -55 dBFS
// raised by the canceller's residue (-45), whichever is higher.
func TestMachineFailedEchoCancellerRaisesTheThreshold(t *testing.T) {
	for _, c := range []struct {
		name      string
		cancelled bool
	}{{"cancelling", true}, {"failed", false}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				room := func(d time.Duration) pipelinetest.Segment { return pipelinetest.Segment{For: d, Level: -58} }
				quiet := pipelinetest.Segment{Voice: true, For: sec, Level: -42} // over -45, under the half-duplex gate's -36
				r := newRig(pipelinetest.Voice(sec), room(2*sec), quiet, room(4*sec))
				r.llm.Reply = func(int) pipelinetest.Reply { return pipelinetest.Reply{Text: "One. Two. Three."} }
				r.tts.Speak = func(int) pipelinetest.Speech { return pipelinetest.Speech{PerSentence: 2 * sec} }
				err := r.run(t, context.Background(), func(o *Options) {
					o.EchoCancelled = func() bool { return c.cancelled }
				})
				if err != nil {
					t.Fatal(err)
				}
				cut := slices.ContainsFunc(replies(r.rec), func(a conversation.AgentText) bool { return a.Interrupted })
				if cut != c.cancelled {
					t.Fatalf("interrupted: %v, want %v: %+v", cut, c.cancelled, replies(r.rec))
				}
			})
		})
	}
}

// Failed turns count per stage; the one past the tolerance closes the
// session with the generic clip. A reply in between resets the count.
func TestMachineToleranceClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var script []pipelinetest.Segment
		for range 6 {
			script = append(script, pipelinetest.Voice(sec), pipelinetest.Silence(2*sec))
		}
		r := newRig(script...)
		r.llm.Reply = func(n int) pipelinetest.Reply {
			if n == 2 {
				return pipelinetest.Reply{Text: "Fine."} // resets the count
			}
			return pipelinetest.Reply{Err: serverErr(provider.StageLLM)}
		}
		err := r.run(t, context.Background(), nil)
		if se, ok := provider.AsStatus(err); !ok || se.StatusCode != 503 {
			t.Fatalf("Run: %v", err)
		}
		// fail, reply, fail x4: the 4th failure after the reply exceeds 3.
		if n := len(r.llm.Calls()); n != 6 {
			t.Fatalf("%d LLM calls", n)
		}
		// Each failed turn the session went on after: the earcon; the one
		// that closed it: the clip.
		fb := payloads[conversation.Fallback](r.rec)
		earcons := 0
		for _, f := range fb[:len(fb)-1] {
			if f.Clip == "earcon_failed" && f.Reason == "turn_failed" && f.OK {
				earcons++
			}
		}
		if c := closeOf(t, r.rec); c.Reason != "error" || c.Error.Stage != "llm" || earcons != 4 || fb[len(fb)-1].Clip != "unavailable" {
			t.Fatalf("close %+v fallback %+v", c, fb)
		}
		if h := r.heard(); len(h) == 0 {
			t.Fatal("the fallback clip was not heard")
		}
	})
}

// A terminal error closes at once, with the quota clip heard.
func TestMachineTerminalClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(sec))
		r.mic.Hold = true
		r.tts.Speak = func(int) pipelinetest.Speech { return pipelinetest.Speech{Err: creditsErr(provider.StageTTS)} }
		err := r.run(t, context.Background(), nil)
		if q, ok := provider.AsQuota(err); !ok || !q.IsTerminal() || q.ErrStage() != provider.StageTTS {
			t.Fatalf("Run: %v", err)
		}
		errs := payloads[conversation.Error](r.rec)
		fb := payloads[conversation.Fallback](r.rec)
		if len(errs) != 1 || !errs[0].Terminal || errs[0].Attempt != 1 || errs[0].Quota == nil || len(fb) != 1 || fb[0].Clip != "quota" || !fb[0].OK {
			t.Fatalf("errors %+v fallback %+v", errs, fb)
		}
		failed, _ := r.at(func(e conversation.Event) bool { _, ok := e.Payload.(conversation.Error); return ok })
		if h := r.heard(); len(h) == 0 || h[0]-failed > 40*msec {
			t.Fatalf("the quota clip was heard at %v, the error at %v", h, failed)
		}
	})
}

// A provider that does not let go cannot hold the close: Run returns
// within closeWait of the user ending it.
func TestMachineCloseIsBoundedWhenAProviderHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig()
		r.mic.Hold = true
		r.stt.CloseHangs = make(chan struct{})
		defer close(r.stt.CloseHangs) // let it go at the end, so the bubble empties
		r.llm.Reply = func(int) pipelinetest.Reply { return pipelinetest.Reply{Stall: true} }
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(2*sec, cancel)
		start := time.Now()
		r.run(t, ctx, nil)
		if took := time.Since(start); took > 2*sec+closeWait+10*msec {
			t.Fatalf("Run returned %v after the user ended it", took-2*sec)
		}
		if c := closeOf(t, r.rec); c.Reason != "user" {
			t.Fatalf("close %+v", c)
		}
	})
}

var stalled = &audio.DeviceError{Direction: "input", Device: "virtual_mic", Op: "read", Err: errors.New("no audio for 2s")}

// The microphone stops mid-session: said at once (a device error, the
// earcon), reopened with a growing pause, and back; typed turns work
// meanwhile.
func TestMachineMicrophoneLostAndBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(2 * sec))
		r.mic.Fail = stalled
		tries := 0
		reopen := func(ctx context.Context) (audio.Source, error) {
			tries++
			if tries < 3 {
				return nil, errors.New("no such device")
			}
			return &pipelinetest.Mic{Script: []pipelinetest.Segment{pipelinetest.Voice(sec), pipelinetest.Silence(2 * sec)}, Hold: true}, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(7*sec, func() { cancel() }) // the user ends it
		r.run(t, ctx, func(o *Options) { o.ReopenMic = reopen })
		e, at, ok := errorOf(r, "device")
		if !ok || e.Terminal || !strings.Contains(e.Message, "microphone") || !strings.Contains(e.Hint, "--input-device") || at != 2*sec {
			t.Fatalf("error %+v at %v", e, at)
		}
		var device bool
		for _, f := range payloads[conversation.Fallback](r.rec) {
			device = device || f.Clip == "earcon_device" && f.OK
		}
		back := payloads[conversation.Device](r.rec)
		if !device || len(back) != 1 || !back[0].OK || tries != 3 {
			t.Fatalf("earcon %v, device events %+v, %d tries", device, back, tries)
		}
		// Its first words after it came back were heard and answered.
		if len(r.llm.Calls()) != 1 {
			t.Fatalf("%d LLM calls", len(r.llm.Calls()))
		}
		if c := closeOf(t, r.rec); c.Reason != "user" {
			t.Fatalf("close %+v", c)
		}
	})
}

// A microphone that does not come back within MicRetryFor closes the
// session with the clip that says so.
func TestMachineMicrophoneGone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(sec))
		r.mic.Fail = stalled
		err := r.run(t, context.Background(), func(o *Options) {
			o.ReopenMic = func(context.Context) (audio.Source, error) { return nil, errors.New("no such device") }
		})
		var dev *audio.DeviceError
		if !errors.As(err, &dev) || dev.Direction != "input" {
			t.Fatalf("Run: %v", err)
		}
		c := closeOf(t, r.rec)
		fb := payloads[conversation.Fallback](r.rec)
		last := fb[len(fb)-1]
		if c.Reason != "error" || c.Error.Stage != "device" || last.Clip != "microphone" || last.Reason != "microphone" || !last.OK {
			t.Fatalf("close %+v, fallback %+v", c, fb)
		}
		if _, at, _ := errorOf(r, "device"); c.Error == nil || at != sec {
			t.Fatalf("first device error at %v", at)
		}
	})
}

// A speaker that fails is terminal: nobody would hear the rest, so nothing
// more goes to paid providers.
func TestMachineSpeakerFailureIsTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(2*sec), pipelinetest.Voice(sec), pipelinetest.Silence(2*sec))
		err := r.run(t, context.Background(), func(o *Options) { o.Speaker = deadSpeaker{o.Speaker} })
		var dev *audio.DeviceError
		if !errors.As(err, &dev) || dev.Direction != "output" {
			t.Fatalf("Run: %v", err)
		}
		if c := closeOf(t, r.rec); c.Error == nil || c.Error.Stage != "device" || !c.Error.Terminal {
			t.Fatalf("close %+v", c)
		}
		if n := len(r.llm.Calls()); n != 1 {
			t.Fatalf("%d LLM calls after the speaker died", n)
		}
	})
}

// A speaker that fails while nothing plays (a headset pulled out between
// turns) is noticed at once, not at the next reply.
func TestMachineIdleSpeakerFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Silence(5*sec), pipelinetest.Voice(sec), pipelinetest.Silence(2*sec))
		err := r.run(t, context.Background(), func(o *Options) {
			o.Speaker = &pipelinetest.DyingSpeaker{Sink: o.Speaker, At: time.Now().Add(1500 * time.Millisecond)}
		})
		var dev *audio.DeviceError
		if !errors.As(err, &dev) || dev.Direction != "output" {
			t.Fatalf("Run: %v", err)
		}
		c := closeOf(t, r.rec)
		if c.Error == nil || c.Error.Stage != "device" || !c.Error.Terminal {
			t.Fatalf("close %+v", c)
		}
		at, _ := r.at(func(e conversation.Event) bool { _, ok := e.Payload.(conversation.Close); return ok })
		if at < 1500*time.Millisecond || at > 2*sec {
			t.Fatalf("closed at %v; the speaker died at 1.5 s", at)
		}
		if n := len(r.llm.Calls()); n != 0 {
			t.Fatalf("%d LLM calls after the speaker died", n)
		}
	})
}

// A microphone may be any Source, one of an uncomparable type included
// (a struct holding a func, as the binary's --record tap): the session
// never compares them.
func TestMachineUncomparableMicrophone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(pipelinetest.Voice(sec), pipelinetest.Silence(2*sec))
		if err := r.run(t, context.Background(), func(o *Options) { o.Mic = tapped{o.Mic, func() {}} }); err != io.EOF && err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(replies(r.rec)) != 1 {
			t.Fatalf("replies %v", replies(r.rec))
		}
	})
}

type tapped struct {
	audio.Source
	tap func()
}

// goroutinesIn counts the goroutines running fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn+"(") {
			n++
		}
	}
	return n
}

// deadSpeaker fails every write, as a speaker whose device is gone.
type deadSpeaker struct{ audio.Sink }

func (d deadSpeaker) Write(context.Context, []int16) (int, error) {
	return 0, &audio.DeviceError{Direction: "output", Device: "virtual_speaker", Op: "play", Err: errors.New("device gone")}
}
