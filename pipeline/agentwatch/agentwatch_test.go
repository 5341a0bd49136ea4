package agentwatch

import (
	"strings"
	"testing"
	"time"
)

// The watchdog runs on the caller's clock: these tests give it instants.

var th = Thresholds{AgentWait: 15 * time.Second, AnswerWait: 10 * time.Second, HeardVoice: time.Second, ReconnectWait: 7 * time.Second}

func at(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }

// listening is a watchdog in a conversation whose agent listens.
func listening() *Watchdog {
	w := New(th)
	w.Joined(at(0))
	w.AgentJoined()
	w.AgentStateChanged(at(1), "listening")
	return w
}

func want(t *testing.T, a *Alarm, kind Kind, clip, terminal, failure bool) {
	t.Helper()
	if a == nil || a.Kind != kind || a.Clip() != clip || a.Terminal != terminal || a.Failure != failure {
		t.Fatalf("alarm %+v, want kind %d clip %v terminal %v failure %v", a, kind, clip, terminal, failure)
	}
}

func TestNoAgent(t *testing.T) {
	w := New(th)
	if a := w.Tick(at(0)); a != nil || !w.Next().IsZero() {
		t.Fatal("an alarm before joining")
	}
	w.Joined(at(0))
	if got := w.Next(); !got.Equal(at(15)) {
		t.Fatalf("next %v", got)
	}
	if a := w.Tick(at(14.9)); a != nil {
		t.Fatalf("early: %+v", a)
	}
	a := w.Tick(at(15))
	want(t, a, NoAgent, true, true, false)
	if a.Stage != "agent" || !strings.Contains(a.Hint, "--agent-name") {
		t.Fatalf("%+v", a)
	}
	if w.Tick(at(30)) != nil {
		t.Fatal("a second terminal alarm")
	}
}

func TestAgentArrivesInTime(t *testing.T) {
	w := listening()
	if a := w.Tick(at(60)); a != nil || !w.Next().IsZero() {
		t.Fatalf("%+v", a)
	}
}

// LLM credits, as agents-js 1.9.0 meets them: an error while the user
// still speaks (preemptive generation), the transcript, more errors, then
// thinking -> listening without a word. The earcon at the transcript
// (the first instant an answer is owed and an error known), the clip when
// the agent gives up.
func TestCreditsEarconAtTheTurnThenClip(t *testing.T) {
	w := listening()
	if a := w.AgentError("inference.LLM"); a != nil {
		t.Fatalf("an alarm while nothing is owed: %+v", a)
	}
	w.UserSpoke(at(2), 2*time.Second)
	a := w.UserTranscript(at(2.5), true)
	want(t, a, AgentError, false, false, false)
	if !strings.Contains(a.Message, "inference.LLM") || a.Hint != HintAgentRetry {
		t.Fatalf("%+v", a)
	}
	if a := w.AgentStateChanged(at(2.6), "thinking"); a != nil {
		t.Fatalf("%+v", a)
	}
	if a := w.AgentError("inference.LLM"); a != nil {
		t.Fatalf("a second earcon for the same answer: %+v", a)
	}
	a = w.AgentStateChanged(at(6.7), "listening")
	want(t, a, NoAnswer, true, false, true)
	if a.Message != "the agent did not answer; it reported errors in inference.LLM" || a.Hint != HintAgentQuiet {
		t.Fatalf("%+v", a)
	}
	if w.Tick(at(30)) != nil {
		t.Fatal("the same silence alarmed twice")
	}
	// The next turn fails again: said again.
	w.UserSpoke(at(31), 2*time.Second)
	w.AgentError("inference.LLM")
	want(t, w.UserTranscript(at(31.5), true), AgentError, false, false, false)
}

// An error that comes after the turn is said at once.
func TestErrorWhileOwedIsSaidAtOnce(t *testing.T) {
	w := listening()
	w.TypedTurn(at(2))
	want(t, w.AgentError("inference.TTS"), AgentError, false, false, false)
}

// A rate limit the agent rides out: the earcon, then its answer; nothing
// more, and the next turn starts clean.
func TestRateLimitRiddenOut(t *testing.T) {
	w := listening()
	w.UserSpoke(at(2), 2*time.Second)
	w.UserTranscript(at(2.5), true)
	want(t, w.AgentError("inference.LLM"), AgentError, false, false, false)
	w.AgentStateChanged(at(2.6), "thinking")
	w.AgentAudio()
	w.AgentStateChanged(at(3), "speaking")
	if a := w.AgentStateChanged(at(6), "listening"); a != nil {
		t.Fatalf("%+v", a)
	}
	if a := w.Tick(at(60)); a != nil || !w.Quiet() {
		t.Fatalf("%+v", a)
	}
	if a := w.TypedTurn(at(61)); a != nil {
		t.Fatalf("the answered turn's error was said again: %+v", a)
	}
}

func TestAnsweredTurnsAreQuiet(t *testing.T) {
	w := listening()
	w.UserSpoke(at(2), 2*time.Second)
	w.UserTranscript(at(2.5), true)
	w.AgentStateChanged(at(2.6), "thinking")
	w.AgentAudio()
	w.AgentStateChanged(at(3), "speaking")
	if a := w.AgentStateChanged(at(6), "listening"); a != nil {
		t.Fatalf("%+v", a)
	}
	if a := w.Tick(at(60)); a != nil || !w.Quiet() {
		t.Fatalf("%+v", a)
	}
}

func TestDeadAir(t *testing.T) {
	w := listening()
	w.TypedTurn(at(5))
	if got := w.Next(); !got.Equal(at(15)) {
		t.Fatalf("next %v", got)
	}
	if a := w.Tick(at(14)); a != nil {
		t.Fatal("early")
	}
	a := w.Tick(at(15))
	want(t, a, DeadAir, false, false, true)
	if !strings.Contains(a.Message, "within 10s") {
		t.Fatalf("%+v", a)
	}
	// The next turn is watched afresh.
	w.TypedTurn(at(20))
	want(t, w.Tick(at(30)), DeadAir, false, false, true)
}

// The agent's STT is gone: the user speaks and no transcript ever comes.
func TestNotHeard(t *testing.T) {
	w := listening()
	w.UserSpoke(at(3), 300*time.Millisecond) // a cough: nothing owed
	if !w.Next().IsZero() || !w.Quiet() {
		t.Fatal("a cough owes an answer")
	}
	w.UserSpoke(at(5), 1500*time.Millisecond)
	if w.Quiet() {
		t.Fatal("quiet while a reaction is owed: the input's end would close the conversation before the alarm")
	}
	want(t, w.Tick(at(15)), NotHeard, false, false, true)
	// An interim transcript is a reaction: nothing owed.
	w.UserSpoke(at(20), 2*time.Second)
	w.UserTranscript(at(20.5), false)
	if a := w.Tick(at(40)); a != nil {
		t.Fatalf("%+v", a)
	}
}

func TestAgentLeft(t *testing.T) {
	w := listening()
	a := w.AgentLeft("CONNECTION_TIMEOUT")
	want(t, a, AgentLeft, true, true, false)
	if a.Message != "the agent left the room (CONNECTION_TIMEOUT)" {
		t.Fatalf("%+v", a)
	}
	if w.Tick(at(60)) != nil {
		t.Fatal("no agent alarm after it left")
	}
}

// The server is gone: the earcon at once, the clip and the end after
// ReconnectWait; nothing else is owed meanwhile.
func TestConnectionLost(t *testing.T) {
	w := listening()
	w.TypedTurn(at(5))
	want(t, w.Reconnecting(at(10)), Reconnecting, false, false, false)
	if a := w.Reconnecting(at(12)); a != nil {
		t.Fatal("a second report restarted the loss")
	}
	if got := w.Next(); !got.Equal(at(17)) {
		t.Fatalf("next %v", got)
	}
	if a := w.Tick(at(16)); a != nil {
		t.Fatalf("dead air while the connection is restored: %+v", a)
	}
	a := w.Tick(at(17))
	want(t, a, Lost, true, true, false)
	if a.Stage != "room" || a.Hint != HintRoom {
		t.Fatalf("%+v", a)
	}
	if d := w.Disconnected("server shut down"); d != nil {
		t.Fatal("a second terminal alarm")
	}
}

// A server restarted within the wait: the SDK's full reconnect drops the
// agent, which is no alarm; once back, the agent is awaited afresh and
// what was owed is owed from then.
func TestServerBackWithinTheWait(t *testing.T) {
	w := listening()
	w.TypedTurn(at(5))
	w.Reconnecting(at(6))
	if a := w.AgentLeft(""); a != nil {
		t.Fatalf("the reconnection's drop of the agent alarmed: %+v", a)
	}
	if !w.Reconnected(at(9)) || w.Reconnected(at(9.5)) {
		t.Fatal("Reconnected does not say the connection came back, once")
	}
	if a := w.Tick(at(18.9)); a != nil {
		t.Fatalf("%+v", a)
	}
	want(t, w.Tick(at(19)), DeadAir, false, false, true) // owed from 9 s
	w.AgentJoined()
	if a := w.Tick(at(60)); a != nil {
		t.Fatalf("%+v", a)
	}
	// Had no agent come back, the agent wait counts from the return.
	w2 := listening()
	w2.Reconnecting(at(6))
	w2.AgentLeft("")
	w2.Reconnected(at(9))
	if got := w2.Next(); !got.Equal(at(24)) {
		t.Fatalf("next %v", got)
	}
	want(t, w2.Tick(at(24)), NoAgent, true, true, false)
}

// The user spoke, the agent went thinking, and back to listening without
// a word, and no transcript ever reached us (seen under load: the session
// then ended with its input, silent). Still an alarm, and nothing lets
// the conversation end quietly while it is owed.
func TestThinkingWithoutTranscriptStillOwesAnAnswer(t *testing.T) {
	w := listening()
	w.UserSpoke(at(2), 1100*time.Millisecond)
	w.AgentStateChanged(at(2.5), "thinking")
	if w.Quiet() {
		t.Fatal("quiet while an answer is owed")
	}
	want(t, w.AgentStateChanged(at(6), "listening"), NoAnswer, true, false, true)
	// And thinking that never ends is dead air, counted from the speech.
	w.UserSpoke(at(10), 1100*time.Millisecond)
	w.AgentStateChanged(at(10.5), "thinking")
	if got := w.Next(); !got.Equal(at(20)) {
		t.Fatalf("next %v", got)
	}
	want(t, w.Tick(at(20)), DeadAir, false, false, true)
}
