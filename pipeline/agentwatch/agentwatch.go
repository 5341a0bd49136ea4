// Package agentwatch notices when a remote agent leaves the user in
// silence: an agent in a room (pipeline/room), or one voicetui brokers
// audio for (console mode). An agent whose inference quota ran out keeps
// its track and its "listening" state and just stops answering, so the
// signs are indirect: it never came, it left, it reported an error while
// an answer is owed, it went back to listening without speaking, or
// nothing came back for too long after the user spoke.
//
// The Watchdog is a pure state machine on the caller's clock: the caller
// feeds it what happened and when, asks Next for its next deadline, and
// acts on the Alarms it returns. An Alarm says how loud to be: a failure
// the conversation survives is the short earcon (the agent may still
// retry); the agent visibly giving up, or a conversation that cannot go
// on, is the spoken clip.
package agentwatch

import (
	"fmt"
	"strings"
	"time"
)

// Kind is what went wrong.
type Kind int

const (
	NoAgent      Kind = iota + 1 // no agent came within AgentWait
	AgentLeft                    // the agent left
	AgentError                   // the agent reported an error while an answer is owed
	NoAnswer                     // thinking -> listening without speaking, after the user's turn
	DeadAir                      // an answer owed for AnswerWait and nothing came
	NotHeard                     // the user spoke; no transcript or reaction came for AnswerWait
	Reconnecting                 // the connection was lost; it is being restored
	Lost                         // the connection was lost for longer than ReconnectWait
	Disconnected                 // the server ended the connection
)

var reasons = map[Kind]string{
	NoAgent: "no_agent", AgentLeft: "agent_left", AgentError: "agent_error", NoAnswer: "no_answer",
	DeadAir: "answer_late", NotHeard: "not_heard", Reconnecting: "reconnecting", Lost: "connection_lost", Disconnected: "disconnected",
}

// Reason is the kind as a word for events ("answer_late").
func (k Kind) Reason() string { return reasons[k] }

// Alarm is one sign of silence: what to tell the user and how loud.
type Alarm struct {
	Kind    Kind
	Stage   string // "agent" or "room"
	Message string
	Hint    string
	// Terminal: the conversation cannot go on (the clip, then the close).
	Terminal bool
	// GaveUp: the agent visibly gave up on the user's turn; the clip
	// plays although the conversation may go on. Neither: the earcon.
	GaveUp bool
	// Failure counts toward ending the conversation after too many in a
	// row (an error the agent may still retry, or a connection being
	// restored, does not).
	Failure bool
}

// Clip reports whether the alarm plays the spoken clip rather than the
// earcon.
func (a *Alarm) Clip() bool { return a.Terminal || a.GaveUp }

// Hints.
const (
	HintAgentQuiet = "the agent stopped answering: check its logs; its inference quota may be exhausted"
	HintAgentRetry = "the agent may still retry; its own log says more"
	HintNoAgent    = "no agent joined the room: is an agent worker running and connected to this server (check --agent-name)?"
	HintRoom       = "the connection to the LiveKit server is gone: is the server running and reachable?"
)

// Thresholds of a Watchdog.
type Thresholds struct {
	AgentWait     time.Duration // for the agent to come after we joined
	AnswerWait    time.Duration // for an answer (or a reaction) after the user's turn
	HeardVoice    time.Duration // voice that surely was speech, not a cough
	ReconnectWait time.Duration // for a lost connection to come back
}

// Watchdog follows one conversation; one goroutine drives it.
type Watchdog struct {
	th Thresholds

	joinedAt    time.Time // we joined (or came back without an agent); zero before
	agent       bool      // an agent is here
	agentGone   bool      // it was, and left
	agentState  string
	answerOwed  time.Time // since the user's turn (a final transcript, a typed turn); zero: none owed
	hearingOwed time.Time // since the user spoke clearly; zero: none owed
	spoke       bool      // the agent spoke since the answer was owed
	warned      bool      // the owed answer's agent errors were said (once per answer)
	errors      []string  // what the agent reported since its last answer
	lostAt      time.Time // reconnecting since; zero: connected
	fired       bool      // a terminal alarm was given: nothing more
}

// New returns a watchdog with th.
func New(th Thresholds) *Watchdog { return &Watchdog{th: th} }

// Joined: we are in; the agent is awaited from now.
func (w *Watchdog) Joined(now time.Time) { w.joinedAt = now }

// AgentJoined: an agent is here.
func (w *Watchdog) AgentJoined() { w.agent, w.agentGone = true, false }

// AgentLeft: the agent left. While the connection is being restored that
// is the SDK dropping everyone (a full reconnect does): the agent is
// awaited again once the connection is back, and nothing is said yet.
func (w *Watchdog) AgentLeft(reason string) *Alarm {
	w.agent = false
	if !w.lostAt.IsZero() {
		return nil
	}
	w.agentGone = true
	msg := "the agent left the room"
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return w.terminal(Alarm{Kind: AgentLeft, Stage: "agent", Message: msg, Hint: HintAgentQuiet})
}

// UserSpoke: the local voice detector heard the user stop after voiced of
// voice.
func (w *Watchdog) UserSpoke(now time.Time, voiced time.Duration) {
	if voiced >= w.th.HeardVoice && w.hearingOwed.IsZero() && w.answerOwed.IsZero() {
		w.hearingOwed = now
	}
}

// UserTranscript: the agent transcribed the user (final: a whole turn,
// which owes an answer).
func (w *Watchdog) UserTranscript(now time.Time, final bool) *Alarm {
	w.hearingOwed = time.Time{}
	if final {
		return w.owe(now)
	}
	return nil
}

// TypedTurn: the user typed a turn to the agent.
func (w *Watchdog) TypedTurn(now time.Time) *Alarm { return w.owe(now) }

// owe starts waiting for an answer. The agent's errors since its last
// answer stay: with preemptive generation its first error comes before
// the transcript that owes the answer, and is said now.
func (w *Watchdog) owe(now time.Time) *Alarm {
	if w.answerOwed.IsZero() {
		w.answerOwed, w.spoke, w.warned = now, false, false
	}
	return w.warn()
}

// AgentError: the agent reported an error (a component label, e.g.
// "inference.LLM"). While an answer is owed, the first one is an alarm:
// the earcon, as the agent may still retry.
func (w *Watchdog) AgentError(label string) *Alarm {
	label = Component(label)
	if !strings.Contains(strings.Join(w.errors, ","), label) {
		w.errors = append(w.errors, label)
	}
	return w.warn()
}

// Component is how an agent's error label is said: agents report only a
// component ("inference.LLM"), sometimes not even that.
func Component(label string) string {
	if label == "" {
		return "an unnamed component"
	}
	return label
}

func (w *Watchdog) warn() *Alarm {
	if w.answerOwed.IsZero() || w.warned || len(w.errors) == 0 || w.fired {
		return nil
	}
	w.warned = true
	return &Alarm{Kind: AgentError, Stage: "agent", Hint: HintAgentRetry,
		Message: "the agent reported errors in " + strings.Join(w.errors, ", ") + " while it owes an answer"}
}

// AgentStateChanged: the agent's state (lk.agent.state).
func (w *Watchdog) AgentStateChanged(now time.Time, state string) *Alarm {
	prev := w.agentState
	w.agentState = state
	switch state {
	case "thinking":
		// The agent took the user's speech as a turn, even when its
		// transcript never reached us (lost, or late under load): an
		// answer is owed now, so thinking -> listening without speaking
		// is still an alarm (it once passed in silence, and the session
		// then closed at the end of its input with nothing said).
		var a *Alarm
		if !w.hearingOwed.IsZero() {
			a = w.owe(w.hearingOwed)
		}
		w.hearingOwed = time.Time{}
		return a
	case "speaking":
		w.answered()
	case "listening", "idle":
		if prev == "thinking" && !w.answerOwed.IsZero() && !w.spoke {
			w.answerOwed = time.Time{}
			return &Alarm{Kind: NoAnswer, Stage: "agent", Message: w.said("the agent did not answer"), Hint: HintAgentQuiet,
				GaveUp: true, Failure: true}
		}
	}
	return nil
}

// AgentAudio: sound came from the agent.
func (w *Watchdog) AgentAudio() { w.answered() }

func (w *Watchdog) answered() {
	w.spoke = true
	w.answerOwed, w.hearingOwed, w.errors, w.warned = time.Time{}, time.Time{}, nil, false
}

// Reconnecting: the connection was lost and is being restored. The first
// report is an alarm (the earcon: it may come back).
func (w *Watchdog) Reconnecting(now time.Time) *Alarm {
	if !w.lostAt.IsZero() || w.fired {
		return nil
	}
	w.lostAt = now
	return &Alarm{Kind: Reconnecting, Stage: "room", Message: "the connection to the room was lost: reconnecting", Hint: HintRoom}
}

// Reconnected: the connection is back; it reports whether it was lost.
// An agent the reconnection dropped is awaited afresh.
func (w *Watchdog) Reconnected(now time.Time) bool {
	if w.lostAt.IsZero() {
		return false
	}
	w.lostAt = time.Time{}
	if !w.agent && !w.agentGone {
		w.joinedAt = now
	}
	// What was owed is owed afresh: nothing could come while lost.
	if !w.answerOwed.IsZero() {
		w.answerOwed = now
	}
	if !w.hearingOwed.IsZero() {
		w.hearingOwed = now
	}
	return true
}

// Disconnected: the server ended the connection.
func (w *Watchdog) Disconnected(reason string) *Alarm {
	msg := "disconnected from the room"
	if reason != "" {
		msg += " (" + reason + ")"
	}
	return w.terminal(Alarm{Kind: Disconnected, Stage: "room", Message: msg, Hint: HintRoom})
}

// Tick checks the deadlines at now.
func (w *Watchdog) Tick(now time.Time) *Alarm {
	if w.fired || w.joinedAt.IsZero() {
		return nil
	}
	switch {
	case !w.lostAt.IsZero():
		if now.Sub(w.lostAt) >= w.th.ReconnectWait {
			return w.terminal(Alarm{Kind: Lost, Stage: "room",
				Message: fmt.Sprintf("the connection to the room was lost for %s", w.th.ReconnectWait), Hint: HintRoom})
		}
		// While it is being restored, nothing else is owed: the agent
		// cannot hear or answer.
	case !w.agent && !w.agentGone && now.Sub(w.joinedAt) >= w.th.AgentWait:
		return w.terminal(Alarm{Kind: NoAgent, Stage: "agent",
			Message: fmt.Sprintf("no agent joined the room within %s", w.th.AgentWait), Hint: HintNoAgent})
	case !w.answerOwed.IsZero() && now.Sub(w.answerOwed) >= w.th.AnswerWait:
		w.answerOwed = time.Time{}
		return &Alarm{Kind: DeadAir, Stage: "agent", Hint: HintAgentQuiet, Failure: true,
			Message: w.said(fmt.Sprintf("the agent did not answer within %s", w.th.AnswerWait))}
	case !w.hearingOwed.IsZero() && now.Sub(w.hearingOwed) >= w.th.AnswerWait:
		w.hearingOwed = time.Time{}
		return &Alarm{Kind: NotHeard, Stage: "agent", Hint: HintAgentQuiet, Failure: true,
			Message: w.said(fmt.Sprintf("the agent did not react to your speech within %s", w.th.AnswerWait))}
	}
	return nil
}

// Next is the next instant Tick has something to check; zero: none.
func (w *Watchdog) Next() time.Time {
	if w.fired || w.joinedAt.IsZero() {
		return time.Time{}
	}
	if !w.lostAt.IsZero() {
		return w.lostAt.Add(w.th.ReconnectWait)
	}
	var t time.Time
	earliest := func(c time.Time) {
		if !c.IsZero() && (t.IsZero() || c.Before(t)) {
			t = c
		}
	}
	if !w.agent && !w.agentGone {
		earliest(w.joinedAt.Add(w.th.AgentWait))
	}
	if !w.answerOwed.IsZero() {
		earliest(w.answerOwed.Add(w.th.AnswerWait))
	}
	if !w.hearingOwed.IsZero() {
		earliest(w.hearingOwed.Add(w.th.AnswerWait))
	}
	return t
}

// Quiet reports whether nothing is owed or pending: the conversation may
// end when its input has (an alarm still owed is given first).
func (w *Watchdog) Quiet() bool {
	return w.answerOwed.IsZero() && w.hearingOwed.IsZero() && w.lostAt.IsZero() &&
		w.agentState != "thinking" && w.agentState != "speaking"
}

func (w *Watchdog) terminal(a Alarm) *Alarm {
	if w.fired {
		return nil
	}
	w.fired = true
	a.Terminal = true
	return &a
}

// said adds what the agent reported to msg.
func (w *Watchdog) said(msg string) string {
	if len(w.errors) > 0 {
		msg += "; it reported errors in " + strings.Join(w.errors, ", ")
	}
	return msg
}
