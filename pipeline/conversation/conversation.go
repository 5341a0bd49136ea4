// Package conversation is the contract between a spoken conversation with
// an agent and what drives it (the terminal interface, --headless, the
// --record files): events out (events.go, a public schema), controls in
// (mute, a typed turn, replaying the fallback, quitting by cancelling
// Run's context), levels for meters through hooks. The local pipeline
// (pipeline/session) is one Conversation; a LiveKit room is another.
//
// It also holds what every conversation must do the same way, so the
// never-silent promise cannot drift between them: what the user hears and
// sees when a conversation ends on an error (FallbackPlayer), and how the
// end is reported (Ended).
package conversation

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// Conversation is a spoken exchange with an agent.
type Conversation interface {
	// Run holds the conversation until ctx ends (close reason "user"),
	// its input ends and the last reply has played ("input_ended"), or an
	// error closes it ("error": the fallback plays first). It returns the
	// error that closed it, or nil. It emits a Close event last.
	Run(ctx context.Context) error
	// SetMuted mutes the microphone.
	SetMuted(muted bool)
	// Say makes text the user's next turn, as if it had been said (text
	// mode); it is dropped while another typed turn waits.
	Say(text string)
	// ReplayFallback plays the fallback sound again (manual QA), also
	// after the conversation has closed.
	ReplayFallback()
	// Wait waits for replays still playing.
	Wait()
}

// Ended is the Close event of a conversation that ended because of cause:
// nil (the user ended it), io.EOF (its input ended) or the error that
// closed it, whose request failed on attempt.
func Ended(cause error, attempt int) Close {
	switch {
	case cause == nil:
		return Close{Reason: "user"}
	case cause == io.EOF:
		return Close{Reason: "input_ended"}
	}
	return Close{Reason: "error", Error: ErrorInfo(cause, max(attempt, 1))}
}

// FallbackPlayer plays what the user hears when a conversation ends on an
// error: a pure decision (fallback.Decide), then the bundled clip straight
// to the speaker, never through the stage that failed, or the configured
// message spoken through TTS when TTS is healthy (the clip when that
// fails too). Bounded in time; one Fallback event says what played.
type FallbackPlayer struct {
	Speaker audio.Sink
	Options fallback.Options
	Events  *Emitter
	// Speak, when set, says a message through TTS and waits until it has
	// been heard. Nil: the bundled clips only.
	Speak func(ctx context.Context, text string) error

	mu        sync.Mutex
	last      fallback.Clip // what the last close chose
	replays   sync.WaitGroup
	playing   chan struct{} // holds a token while an earcon, a replay or the closing clip plays (a channel: testing/synctest sees it block)
	cutReplay func()        // ends the replay playing or waiting to; nil when there is none (under mu)
	signals   int           // failure signals cutting in, not yet holding the token: no replay starts before them (under mu)
}

// sound returns the one-sound-at-a-time token holder, made on first use.
func (p *FallbackPlayer) sound() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.playing == nil {
		p.playing = make(chan struct{}, 1)
	}
	return p.playing
}

// Play decides and plays the fallback for cause and waits until it has
// been heard (bounded by the clip's length, or fallback.SpeakTimeout for a
// spoken message). Call it before tearing anything down: the signal must
// not wait.
func (p *FallbackPlayer) Play(cause error, st fallback.State) {
	d := fallback.Decide(cause, st, p.Options)
	p.mu.Lock()
	switch {
	case d.Clip != "":
		p.last = d.Clip
	case d.Reason == "quota_exhausted":
		p.last = fallback.Quota
	}
	p.mu.Unlock()
	ev := Fallback{Clip: string(d.Clip), Text: d.Text, Reason: d.Reason}
	if d.None() {
		p.Events.Emit(ev) // sound off by choice; ok stays false
		return
	}
	// An earcon still playing (the failure just before) ends first, and no
	// other starts over the clip: one sound at a time. A replay is cut
	// short instead: it can be as long as the clip, which must not wait.
	p.signalComing()
	sound := p.sound()
	sound <- struct{}{}
	p.signalHolds()
	defer func() { <-sound }()
	var problems []string
	if d.Text != "" {
		if p.Speak != nil {
			ctx, cancel := context.WithTimeout(context.Background(), fallback.SpeakTimeout)
			err := p.Speak(ctx, d.Text)
			cancel()
			if err == nil {
				ev.OK = true
				p.Events.Emit(ev)
				return
			}
			// TTS let us down after all: the clip.
			problems = append(problems, "speaking the message: "+safetext.Sanitize(err.Error(), 200))
			p.Speaker.Flush()
		} else {
			ev.Text = "" // nothing here can speak it: the clip instead
		}
		d.Clip = fallback.Unavailable
		if q, ok := provider.AsQuota(cause); ok && q.IsTerminal() {
			d.Clip = fallback.Quota
		}
		ev.Clip = string(d.Clip)
	}
	err := p.playClip(context.Background(), d.Clip)
	ev.OK = err == nil
	if err != nil {
		problems = append(problems, safetext.Sanitize(err.Error(), 200))
	}
	ev.Error = strings.Join(problems, "; ")
	p.Events.Emit(ev)
}

// errReplayCut ends a replay a failure's signal replaced.
var errReplayCut = errors.New("cut short: a failure's signal played instead")

// signalComing says a failure's signal is about to take the sound token:
// it cuts short the replay playing or waiting to play, and no replay asked
// for starts until the signal holds the token (signalHolds). It reports
// whether there was a replay: the token is then given back once the replay
// has flushed what it queued, so the signal should wait for it.
func (p *FallbackPlayer) signalComing() (replay bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signals++
	if p.cutReplay == nil {
		return false
	}
	p.cutReplay()
	return true
}

// signalHolds ends what signalComing began: the signal holds the token, or
// gave up.
func (p *FallbackPlayer) signalHolds() {
	p.mu.Lock()
	p.signals--
	p.mu.Unlock()
}

// Replay plays the last close's clip again (the quota clip when there was
// none), in the background; its Fallback event has reason "replay". One
// sound at a time: it waits for an earcon or the closing clip playing now,
// a replay asked for while one plays or waits, or while a failure's signal
// is cutting in, is dropped (two would play into one speaker at once), and
// a failure's signal (Play, Earcon) cuts it short.
func (p *FallbackPlayer) Replay() {
	p.mu.Lock()
	clip := p.last
	if p.cutReplay != nil || p.signals > 0 {
		p.mu.Unlock()
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	p.cutReplay = func() { cancel(errReplayCut) }
	p.mu.Unlock()
	if clip == "" {
		clip = fallback.Quota
	}
	p.replays.Add(1)
	go func() {
		defer p.replays.Done()
		ev := Fallback{Clip: string(clip), Reason: "replay"}
		err := p.replay(ctx, clip)
		p.mu.Lock()
		p.cutReplay = nil
		p.mu.Unlock()
		cancel(nil)
		ev.OK = err == nil
		if err != nil {
			ev.Error = safetext.Sanitize(err.Error(), 200)
		}
		p.Events.Emit(ev)
	}()
}

// replay plays clip once it holds the sound token, unless ctx ends first;
// a replay cut short leaves nothing of itself queued in the speaker.
func (p *FallbackPlayer) replay(ctx context.Context, clip fallback.Clip) error {
	sound := p.sound()
	select {
	case sound <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-sound }()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if err := p.playClip(ctx, clip); err != nil {
		if ctx.Err() != nil {
			p.Speaker.Flush() // what it queued: the signal that cut it plays next
			return context.Cause(ctx)
		}
		return err
	}
	return nil
}

// Sounding reports whether an earcon or a clip is playing now.
func (p *FallbackPlayer) Sounding() bool { return len(p.sound()) > 0 }

// Wait waits for replays and earcons still playing.
func (p *FallbackPlayer) Wait() { p.replays.Wait() }

// Earcon plays a short tone for a failure the conversation goes on after
// (fallback.EarconFailed, fallback.EarconDevice), in the background, and
// says so in a Fallback event with reason. It is silent with
// --no-error-audio, and skipped while another earcon or the closing clip
// still plays (two failures at once are one signal). It cuts a replay
// short: a failure's signal comes before a clip played for QA. When a
// replay was there it waits for the token instead of being skipped (the
// replay may hold it, or be waiting behind another sound): a signal may
// come late, never be lost.
func (p *FallbackPlayer) Earcon(clip fallback.Clip, reason string) {
	if p.Options.NoErrorAudio {
		return
	}
	sound := p.sound()
	waits := p.signalComing()
	if !waits {
		select {
		case sound <- struct{}{}:
			p.signalHolds()
		default:
			p.signalHolds()
			return
		}
	}
	p.replays.Add(1)
	go func() {
		defer p.replays.Done()
		if waits {
			sound <- struct{}{}
			p.signalHolds()
		}
		defer func() { <-sound }()
		err := p.playClip(context.Background(), clip)
		ev := Fallback{Clip: string(clip), Reason: reason, OK: err == nil}
		if err != nil {
			ev.Error = safetext.Sanitize(err.Error(), 200)
		}
		p.Events.Emit(ev)
	}()
}

// playClip plays a bundled clip (or the user's own sound) to the speaker.
func (p *FallbackPlayer) playClip(ctx context.Context, clip fallback.Clip) error {
	pcm, err := fallback.Samples(clip, p.Options)
	if err != nil {
		return err
	}
	return fallback.Play(ctx, p.Speaker, pcm) // bounded by the clip's length
}

// SpeakerPoll is how often WatchSpeaker asks an idle speaker whether it
// still works.
const SpeakerPoll = 250 * time.Millisecond

// WatchSpeaker calls failed once, with the speaker's error, when spk says
// it has failed (a headset pulled out between replies), and returns; it
// returns when ctx ends. A failure is then noticed at once, not at the next
// reply. A speaker that cannot fail (no Err method) is not watched.
func WatchSpeaker(ctx context.Context, spk audio.Sink, failed func(error)) {
	w, ok := spk.(interface{ Err() error })
	if !ok {
		return
	}
	tick := time.NewTicker(SpeakerPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := w.Err(); err != nil {
				failed(err)
				return
			}
		}
	}
}
