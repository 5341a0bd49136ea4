package conversation

import (
	"fmt"
	"sync"
	"time"

	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/agentwatch"
)

// Alarms is what a conversation with a remote agent (a room, console
// mode) does with its watchdog's alarms, one way for both so the
// never-silent rules cannot drift apart: an error event with the alarm's
// hint and a sound at once (the earcon for a failure the conversation
// survives, the clip when the agent gave up), and the end of the
// conversation for a terminal alarm or one failure too many. Only the
// conversation's loop calls it, except Wait and Sound at the close.
type Alarms struct {
	Player *FallbackPlayer
	Events *Emitter
	// MaxUnrecoverable failures in a row are tolerated (0: none).
	MaxUnrecoverable int
	// Trace hears alarm:REASON and fallback_start (nil: nobody).
	Trace func(mark string, at time.Time)

	failures int
	playing  sync.Mutex // one clip at a time; Close waits for it
}

func (x *Alarms) trace(mark string) {
	if x.Trace != nil {
		x.Trace(mark, time.Now())
	}
}

// Raise acts on a; describe makes the conversation's own error of it
// (message, terminal). It returns the error that ends the conversation,
// or nil when it goes on.
func (x *Alarms) Raise(a *agentwatch.Alarm, describe func(message string, terminal bool) error) error {
	x.trace("alarm:" + a.Kind.Reason())
	if a.Terminal {
		return describe(a.Message, true)
	}
	msg := a.Message
	if a.Failure {
		x.failures++
		if x.failures > x.MaxUnrecoverable {
			if x.failures > 1 {
				msg += fmt.Sprintf(" (%d times in a row)", x.failures)
			}
			return describe(msg, true)
		}
	}
	err := describe(msg, false)
	ev := *ErrorInfo(err, x.Attempt())
	ev.Retryable = !a.Clip()
	x.Events.Emit(ev)
	if !a.Clip() {
		x.trace("fallback_start")
		x.Player.Earcon(fallback.EarconFailed, a.Kind.Reason())
		return nil
	}
	if x.playing.TryLock() { // a clip already playing is the signal
		go func() {
			defer x.playing.Unlock()
			x.trace("fallback_start")
			x.Player.Play(err, fallback.State{TTSFailed: true})
		}()
	}
	return nil
}

// Answered: the agent was heard; the failures in a row start again.
func (x *Alarms) Answered() { x.failures = 0 }

// Attempt is the attempt number of the next error said: the failures in
// a row, at least 1.
func (x *Alarms) Attempt() int { return max(x.failures, 1) }

// Close plays the fallback for the error that closes the conversation
// (after any clip still playing) and waits until it has been heard; with
// a nil cause it only waits for a clip still playing.
func (x *Alarms) Close(cause error) {
	x.playing.Lock()
	defer x.playing.Unlock()
	if cause != nil {
		x.trace("fallback_start")
		x.Player.Play(cause, fallback.State{TTSFailed: true})
	}
}
