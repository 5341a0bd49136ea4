package session

import (
	"sync"
	"time"
)

// Watchdogs for the answers a provider owes a turn. They are the
// session's own, independent of each provider's idle timer: a stream kept
// alive by keepalives (SSE comments, a TTS socket's session.created or
// unknown messages) still owes its answer. When one fires, the turn is
// cancelled with a provider.TimeoutError of the owing stage, reported and
// counted like any failed request, and the user hears the turn-failed
// earcon; what the provider sends after that is discarded with the turn.
//
//   - finalize -> final transcript: FinalizeWait (stt.go)
//   - LLM request -> first text: AnswerWait (reply.go)
//   - text pushed to TTS -> audio, and, once the reply is flushed, audio ->
//     more audio until the end: AudioWait (audioOwed)

// audioOwed times the waits for TTS audio: its timer runs only while the
// turn waits in Recv (not while the speaker makes it wait) and only while
// audio is owed: text was pushed and no audio has come since, or the
// reply is flushed and has not ended. A pause of the LLM between
// sentences owes nothing.
type audioOwed struct {
	mu         sync.Mutex
	timer      *time.Timer
	wait       time.Duration
	unanswered bool // a push since the last audio
	flushedAll bool
	waiting    bool // in Recv
	over       bool
}

func newAudioOwed(wait time.Duration, fire func()) *audioOwed {
	a := &audioOwed{wait: wait, timer: time.AfterFunc(time.Hour, fire)}
	a.timer.Stop()
	return a
}

// arm runs the timer from now while audio is owed and awaited; caller
// holds mu.
func (a *audioOwed) arm() {
	if !a.over && a.waiting && (a.unanswered || a.flushedAll) {
		a.timer.Reset(a.wait)
	} else {
		a.timer.Stop()
	}
}

func (a *audioOwed) set(f func()) {
	if a == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	f()
	a.arm()
}

func (a *audioOwed) pushed()  { a.set(func() { a.unanswered = true }) }
func (a *audioOwed) flushed() { a.set(func() { a.flushedAll = true }) }

// recv brackets a wait in Recv; got says whether it brought audio.
func (a *audioOwed) recvStart() { a.set(func() { a.waiting = true }) }
func (a *audioOwed) recvEnd(got bool) {
	a.set(func() {
		a.waiting = false
		if got {
			a.unanswered = false
		}
	})
}

// stop ends the watch: the utterance ended, or the turn is over.
func (a *audioOwed) stop() { a.set(func() { a.over = true }) }
