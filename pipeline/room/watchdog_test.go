package room

import (
	"strings"
	"testing"
	"time"
)

var th = thresholds{agentWait: 15 * time.Second, answerWait: 10 * time.Second, heardVoice: time.Second, reconnectWait: 10 * time.Second}

func at(s float64) time.Time { return time.Unix(1000, 0).Add(time.Duration(s * float64(time.Second))) }

func TestWatchdogNoAgent(t *testing.T) {
	w := newWatchdog(th)
	if a := w.tick(at(0)); a != nil || !w.next().IsZero() {
		t.Fatal("an alarm before joining")
	}
	w.joined(at(0))
	if got := w.next(); !got.Equal(at(15)) {
		t.Fatalf("next %v", got)
	}
	if a := w.tick(at(14.9)); a != nil {
		t.Fatalf("early: %+v", a)
	}
	a := w.tick(at(15))
	if a == nil || a.kind != alarmNoAgent || !a.terminal || a.stage != "agent" || !strings.Contains(a.hint, "--agent-name") {
		t.Fatalf("%+v", a)
	}
	if w.tick(at(30)) != nil {
		t.Fatal("a second terminal alarm")
	}
}

func TestWatchdogAgentArrivesInTime(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	if a := w.tick(at(60)); a != nil || !w.next().IsZero() {
		t.Fatalf("%+v", a)
	}
}

func TestWatchdogThinkingThenListeningWithoutSpeaking(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.agentStateChanged(at(1), "listening")
	w.userSpoke(at(2), 2*time.Second)
	w.agentError("inference.LLM") // preemptive generation: before the transcript
	w.userTranscript(at(2.5), true)
	w.agentStateChanged(at(2.6), "thinking")
	w.agentError("inference.LLM")
	a := w.agentStateChanged(at(6.7), "listening")
	if a == nil || a.kind != alarmNoAnswer || a.terminal || a.message != "the agent did not answer; it reported errors in inference.LLM" || a.hint != hintAgentQuiet {
		t.Fatalf("%+v", a)
	}
	if w.tick(at(30)) != nil {
		t.Fatal("the same silence alarmed twice")
	}
}

func TestWatchdogAnsweredTurnsAreQuiet(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.userSpoke(at(2), 2*time.Second)
	w.userTranscript(at(2.5), true)
	w.agentStateChanged(at(2.6), "thinking")
	w.agentAudio()
	w.agentStateChanged(at(3), "speaking")
	if a := w.agentStateChanged(at(6), "listening"); a != nil {
		t.Fatalf("%+v", a)
	}
	if a := w.tick(at(60)); a != nil || !w.quiet() {
		t.Fatalf("%+v", a)
	}
}

func TestWatchdogDeadAir(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.typedTurn(at(5))
	if got := w.next(); !got.Equal(at(15)) {
		t.Fatalf("next %v", got)
	}
	if a := w.tick(at(14)); a != nil {
		t.Fatal("early")
	}
	a := w.tick(at(15))
	if a == nil || a.kind != alarmDeadAir || a.terminal || !strings.Contains(a.message, "within 10s") {
		t.Fatalf("%+v", a)
	}
	// The next turn is watched afresh.
	w.typedTurn(at(20))
	if a := w.tick(at(30)); a == nil || a.kind != alarmDeadAir {
		t.Fatalf("second turn %+v", a)
	}
}

// The agent's STT is gone: the user speaks and no transcript ever comes.
func TestWatchdogNotHeard(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.userSpoke(at(3), 300*time.Millisecond) // a cough: nothing owed
	if !w.next().IsZero() {
		t.Fatal("a cough owes an answer")
	}
	w.userSpoke(at(5), 1500*time.Millisecond)
	a := w.tick(at(15))
	if a == nil || a.kind != alarmNotHeard || a.terminal {
		t.Fatalf("%+v", a)
	}
	// An interim transcript is a reaction: nothing owed.
	w.userSpoke(at(20), 2*time.Second)
	w.userTranscript(at(20.5), false)
	if a := w.tick(at(40)); a != nil {
		t.Fatalf("%+v", a)
	}
}

func TestWatchdogAgentLeft(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	a := w.agentLeft("CONNECTION_TIMEOUT")
	if a == nil || a.kind != alarmAgentLeft || !a.terminal || a.message != "the agent left the room (CONNECTION_TIMEOUT)" {
		t.Fatalf("%+v", a)
	}
	if w.tick(at(60)) != nil {
		t.Fatal("no agent alarm after it left")
	}
}

func TestWatchdogConnectionLost(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.reconnecting(at(10))
	w.reconnected()
	if a := w.tick(at(30)); a != nil {
		t.Fatalf("recovered: %+v", a)
	}
	w.reconnecting(at(40))
	w.reconnecting(at(45)) // a second report does not restart the clock
	a := w.tick(at(50))
	if a == nil || a.kind != alarmLost || !a.terminal || a.stage != "room" || a.hint != hintRoom {
		t.Fatalf("%+v", a)
	}
	if d := w.disconnected("server shut down"); d != nil {
		t.Fatal("a second terminal alarm")
	}
}

// The user spoke, the agent went thinking, and back to listening without
// a word, and no transcript ever reached us (seen under load: the session
// then ended with its input, silent). Still an alarm, and nothing lets
// the conversation end quietly while it is owed.
func TestWatchdogThinkingWithoutTranscriptStillOwesAnAnswer(t *testing.T) {
	w := newWatchdog(th)
	w.joined(at(0))
	w.agentJoined()
	w.agentStateChanged(at(1), "listening")
	w.userSpoke(at(2), 1100*time.Millisecond)
	w.agentStateChanged(at(2.5), "thinking")
	if w.quiet() {
		t.Fatal("quiet while an answer is owed")
	}
	a := w.agentStateChanged(at(6), "listening")
	if a == nil || a.kind != alarmNoAnswer || a.terminal {
		t.Fatalf("%+v", a)
	}
	// And thinking that never ends is dead air, counted from the speech.
	w.userSpoke(at(10), 1100*time.Millisecond)
	w.agentStateChanged(at(10.5), "thinking")
	if got := w.next(); !got.Equal(at(20)) {
		t.Fatalf("next %v", got)
	}
	if a := w.tick(at(20)); a == nil || a.kind != alarmDeadAir {
		t.Fatalf("%+v", a)
	}
}
