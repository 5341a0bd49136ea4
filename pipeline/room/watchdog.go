package room

import (
	"fmt"
	"strings"
	"time"
)

// The watchdog notices when a remote agent leaves the user in silence. An
// agent whose inference quota ran out keeps its track published and its
// state at "listening" and just stops answering, so the signs are
// indirect: it never came, it left, it went back to listening without
// speaking, or nothing came back for too long after the user spoke. It is
// a pure state machine: the loop feeds it what happened and when, asks it
// when its next deadline is, and acts on the alarms it returns. Its
// thresholds are Options (and flags).

// alarmKind is what went wrong.
type alarmKind int

const (
	alarmNoAgent      alarmKind = iota + 1 // no agent joined within AgentWait
	alarmAgentLeft                         // the agent left the room
	alarmNoAnswer                          // thinking -> listening without speaking, after the user's turn
	alarmDeadAir                           // an answer owed for AnswerWait and nothing came
	alarmNotHeard                          // the user spoke, and no transcript or reaction came for AnswerWait
	alarmLost                              // the connection was lost for longer than ReconnectWait
	alarmDisconnected                      // the room ended the connection
)

// alarm is one sign of silence: what to tell the user, and whether the
// conversation can go on.
type alarm struct {
	kind     alarmKind
	stage    string // "agent" or "room"
	message  string
	hint     string
	terminal bool // the conversation cannot go on
}

const (
	hintAgentQuiet = "the agent stopped answering: check its logs; its inference quota may be exhausted"
	hintNoAgent    = "no agent joined the room: is an agent worker running and connected to this server (check --agent-name)?"
	hintRoom       = "the connection to the LiveKit server is gone: is the server running and reachable?"
)

// watchdog's thresholds.
type thresholds struct {
	agentWait     time.Duration // for the agent to join after we did
	answerWait    time.Duration // for an answer (or a reaction) after the user's turn
	heardVoice    time.Duration // voice that surely was speech, not a cough
	reconnectWait time.Duration // for a lost connection to come back
}

type watchdog struct {
	th thresholds

	joinedAt    time.Time // we joined; zero before
	agent       bool      // an agent is in the room
	agentGone   bool      // it was, and left
	agentState  string
	answerOwed  time.Time // since the user's turn (a final transcript, a typed turn); zero: none owed
	hearingOwed time.Time // since the user spoke clearly; zero: none owed
	spoke       bool      // the agent spoke since the answer was owed
	errors      []string  // what the agent reported since the answer was owed
	lostAt      time.Time // reconnecting since; zero: connected
	fired       bool      // a terminal alarm was given: nothing more
}

func newWatchdog(th thresholds) *watchdog { return &watchdog{th: th} }

// joined: we are in the room.
func (w *watchdog) joined(now time.Time) { w.joinedAt = now }

// agentJoined: an agent participant is in the room.
func (w *watchdog) agentJoined() { w.agent, w.agentGone = true, false }

// agentLeft: the agent left.
func (w *watchdog) agentLeft(reason string) *alarm {
	w.agent, w.agentGone = false, true
	msg := "the agent left the room"
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return w.terminal(alarm{kind: alarmAgentLeft, stage: "agent", message: msg, hint: hintAgentQuiet})
}

// userSpoke: the local voice detector heard the user stop after voiced of
// voice.
func (w *watchdog) userSpoke(now time.Time, voiced time.Duration) {
	if voiced >= w.th.heardVoice && w.hearingOwed.IsZero() && w.answerOwed.IsZero() {
		w.hearingOwed = now
	}
}

// userTranscript: the agent transcribed the user (final: a whole turn).
func (w *watchdog) userTranscript(now time.Time, final bool) {
	w.hearingOwed = time.Time{}
	if final {
		w.owe(now)
	}
}

// typedTurn: the user typed a turn to the agent.
func (w *watchdog) typedTurn(now time.Time) { w.owe(now) }

func (w *watchdog) owe(now time.Time) {
	if w.answerOwed.IsZero() {
		// What the agent reported since its last answer stays: with
		// preemptive generation its first error can come before the
		// transcript that owes the answer.
		w.answerOwed, w.spoke = now, false
	}
}

// agentError: the agent reported an error (a component label, e.g.
// "inference.LLM"), said with the next alarm.
func (w *watchdog) agentError(label string) {
	if label != "" && !strings.Contains(strings.Join(w.errors, ","), label) {
		w.errors = append(w.errors, label)
	}
}

// agentStateChanged: the agent's lk.agent.state.
func (w *watchdog) agentStateChanged(now time.Time, state string) *alarm {
	prev := w.agentState
	w.agentState = state
	switch state {
	case "thinking":
		// The agent took the user's speech as a turn, even when its
		// transcript never reached us (lost, or late under load): an
		// answer is owed now, so thinking -> listening without speaking
		// is still an alarm (it once passed in silence, and the session
		// then closed at the end of its input with nothing said).
		if !w.hearingOwed.IsZero() {
			w.owe(w.hearingOwed)
		}
		w.hearingOwed = time.Time{}
	case "speaking":
		w.answered()
	case "listening", "idle":
		if prev == "thinking" && !w.answerOwed.IsZero() && !w.spoke {
			w.answerOwed = time.Time{}
			return &alarm{kind: alarmNoAnswer, stage: "agent", message: w.said("the agent did not answer"), hint: hintAgentQuiet}
		}
	}
	return nil
}

// agentAudio: sound came from the agent.
func (w *watchdog) agentAudio() { w.answered() }

func (w *watchdog) answered() {
	w.spoke = true
	w.answerOwed, w.hearingOwed, w.errors = time.Time{}, time.Time{}, nil
}

// reconnecting and reconnected: the connection was lost and is being
// restored.
func (w *watchdog) reconnecting(now time.Time) {
	if w.lostAt.IsZero() {
		w.lostAt = now
	}
}
func (w *watchdog) reconnected() { w.lostAt = time.Time{} }

// disconnected: the room is gone.
func (w *watchdog) disconnected(reason string) *alarm {
	msg := "disconnected from the room"
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return w.terminal(alarm{kind: alarmDisconnected, stage: "room", message: msg, hint: hintRoom})
}

// tick checks the deadlines at now.
func (w *watchdog) tick(now time.Time) *alarm {
	if w.fired || w.joinedAt.IsZero() {
		return nil
	}
	switch {
	case !w.lostAt.IsZero() && now.Sub(w.lostAt) >= w.th.reconnectWait:
		return w.terminal(alarm{kind: alarmLost, stage: "room",
			message: fmt.Sprintf("the connection to the room was lost for %s", w.th.reconnectWait), hint: hintRoom})
	case !w.agent && !w.agentGone && now.Sub(w.joinedAt) >= w.th.agentWait:
		return w.terminal(alarm{kind: alarmNoAgent, stage: "agent",
			message: fmt.Sprintf("no agent joined the room within %s", w.th.agentWait), hint: hintNoAgent})
	case !w.answerOwed.IsZero() && now.Sub(w.answerOwed) >= w.th.answerWait:
		w.answerOwed = time.Time{}
		return &alarm{kind: alarmDeadAir, stage: "agent", hint: hintAgentQuiet,
			message: w.said(fmt.Sprintf("the agent did not answer within %s", w.th.answerWait))}
	case !w.hearingOwed.IsZero() && now.Sub(w.hearingOwed) >= w.th.answerWait:
		w.hearingOwed = time.Time{}
		return &alarm{kind: alarmNotHeard, stage: "agent", hint: hintAgentQuiet,
			message: w.said(fmt.Sprintf("the agent did not react to your speech within %s", w.th.answerWait))}
	}
	return nil
}

// next is the next instant tick has something to check; zero: none.
func (w *watchdog) next() time.Time {
	if w.fired || w.joinedAt.IsZero() {
		return time.Time{}
	}
	var t time.Time
	earliest := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	if !w.lostAt.IsZero() {
		earliest(w.lostAt.Add(w.th.reconnectWait))
	}
	if !w.agent && !w.agentGone {
		earliest(w.joinedAt.Add(w.th.agentWait))
	}
	if !w.answerOwed.IsZero() {
		earliest(w.answerOwed.Add(w.th.answerWait))
	}
	if !w.hearingOwed.IsZero() {
		earliest(w.hearingOwed.Add(w.th.answerWait))
	}
	return t
}

// quiet reports whether nothing is owed or pending: the conversation may
// end when its input has.
func (w *watchdog) quiet() bool {
	return w.answerOwed.IsZero() && w.hearingOwed.IsZero() && w.agentState != "thinking" && w.agentState != "speaking"
}

func (w *watchdog) terminal(a alarm) *alarm {
	if w.fired {
		return nil
	}
	w.fired = true
	a.terminal = true
	return &a
}

// said adds what the agent reported to msg.
func (w *watchdog) said(msg string) string {
	if len(w.errors) > 0 {
		msg += "; it reported errors in " + strings.Join(w.errors, ", ")
	}
	return msg
}
