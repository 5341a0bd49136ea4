package session

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// The error policy, as in the reference SDK but typed: every failed request
// is an error event; a terminal error closes the session at once; other
// unrecoverable errors are counted per stage and close it when a stage has
// more than MaxUnrecoverable. Counts reset when the agent speaks (LLM,
// TTS) or the user is heard (STT).

// errorPolicy counts unrecoverable errors per stage.
type errorPolicy struct {
	counts      map[provider.Stage]int
	ttsFailed   bool // TTS failed in this session: the fallback must not need it
	lastAttempt int  // of the last final error
}

// exceeds counts one more error of stage and reports whether that is
// more than max.
func (p *errorPolicy) exceeds(stage provider.Stage, max int) bool {
	p.counts[stage]++
	return p.counts[stage] > max
}

// spoke resets the reply stages: the agent was heard.
func (p *errorPolicy) spoke() { p.counts[provider.StageLLM], p.counts[provider.StageTTS] = 0, 0 }

// heard resets STT: a transcript arrived.
func (p *errorPolicy) heard() { p.counts[provider.StageSTT] = 0 }

// reportFinal emits a request's final failure.
func (r *run) reportFinal(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	if provider.Terminal(err) {
		r.trace("terminal_error", time.Now())
	}
	r.policy.lastAttempt = r.o.Attempts.final(err)
	r.emit(*conversation.ErrorInfo(err, r.policy.lastAttempt))
}

// onTurnDone ends a reply: said, or failed (reported, counted); it returns
// the error that closes the session, or nil.
func (r *run) onTurnDone(ctx context.Context, t *turn, err error) error {
	r.turn = nil
	r.listen.vad.Boost, r.listen.vad.Residue = 0, 0
	if err == nil {
		r.setAgent("listening")
		r.history = append(r.history, provider.Message{Role: "assistant", Content: t.spoken()})
		r.emit(t.snapshot())
		return nil
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	r.reportFinal(err)
	r.o.Speaker.Flush() // a reply that failed midway stops; a fallback must not queue behind it
	r.setAgent("listening")
	var c provider.Classified
	stage := provider.StageUnknown
	if errors.As(err, &c) {
		stage = c.ErrStage()
	}
	if stage == provider.StageTTS {
		r.policy.ttsFailed = true
	}
	var dev *audio.DeviceError
	if errors.As(err, &dev) && dev.Direction == "output" {
		return err // nobody hears the rest: nothing more goes to paid providers
	}
	if provider.Terminal(err) || r.policy.exceeds(stage, r.o.MaxUnrecoverable) {
		return err
	}
	r.trace("failure_known", time.Now())
	r.s.fallback.Earcon(fallback.EarconFailed, "turn_failed") // the turn failed; the session goes on
	return nil
}

// close ends the session: on an error the fallback plays first; the
// teardown is bounded in time. cause is nil (user), io.EOF (input ended)
// or the closing error.
func (r *run) close(ctx context.Context, cause error) error {
	if r.turn != nil {
		r.turn.cancel(context.Canceled)
		r.turn.stopped(200 * time.Millisecond)
		r.turn = nil
		r.o.Speaker.Flush() // the reply stops (an earcon playing is left to end)
	}
	r.dropPending()
	if cause != nil && cause != io.EOF && errors.Is(cause, context.Canceled) && ctx.Err() != nil {
		cause = nil // the user ended it
	}
	if cause != nil && cause != io.EOF {
		var c provider.Classified
		ttsFailed := r.policy.ttsFailed || errors.As(cause, &c) && c.ErrStage() == provider.StageTTS
		r.s.fallback.Play(cause, fallback.State{TTSFailed: ttsFailed}) // first: the signal must not wait for teardown
	}
	if l := r.stt.link; l != nil {
		done := make(chan struct{})
		go func() { l.close(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}
	if cause == io.EOF {
		// The input ended just after a failure (the finalize watchdog
		// fired as it ended): its earcon is heard to the end first.
		r.s.fallback.Wait()
	}
	r.emit(conversation.Ended(cause, r.policy.lastAttempt))
	if cause == io.EOF {
		return nil
	}
	return cause
}
