package conversation

import (
	"sync/atomic"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
)

// Remote is the controls of a conversation with a remote agent (a room,
// console mode), one way for both: mute, a typed turn waiting for the
// loop, the fallback player and its replays. Embed it; the loop reads
// Muted and Typed.
type Remote struct {
	Player *FallbackPlayer
	muted  atomic.Bool
	typed  chan string
}

// NewRemote is the controls for a conversation whose sounds go to spk.
func NewRemote(spk audio.Sink, o fallback.Options, events *Emitter) Remote {
	fallback.Preload(o)
	return Remote{Player: &FallbackPlayer{Speaker: spk, Options: o, Events: events}, typed: make(chan string, 4)}
}

// SetMuted mutes the microphone: silence is sent instead.
func (r *Remote) SetMuted(m bool) { r.muted.Store(m) }

// Muted reports whether the microphone is muted.
func (r *Remote) Muted() bool { return r.muted.Load() }

// Say queues text as a typed turn for the agent; it is dropped while
// four already wait.
func (r *Remote) Say(text string) {
	select {
	case r.typed <- text:
	default:
	}
}

// Typed is where the loop receives typed turns.
func (r *Remote) Typed() <-chan string { return r.typed }

// ReplayFallback plays the fallback clip again.
func (r *Remote) ReplayFallback() { r.Player.Replay() }

// Wait waits for replays still playing.
func (r *Remote) Wait() { r.Player.Wait() }
