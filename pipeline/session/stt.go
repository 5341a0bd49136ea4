package session

import (
	"context"
	"io"
	"time"

	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// One STT stream serves the whole session: all microphone audio goes to it
// through a bounded writer, and at the end of each of the user's turns it
// is asked for the final transcript (finalize). Finalizes are answered in
// order; each answer starts the agent's reply. A stream that fails is
// reopened within the error policy's tolerance.

// sttLink is an open STT stream with its writer (audio and finalizes, in
// order, so that the loop never waits on the network) and its reader.
// Its goroutines live as long as the link, not the session: a stream given
// up takes them with it.
type sttLink struct {
	stream provider.STTStream
	in     chan sttWrite // to the writer: 2 s of audio
	done   chan struct{} // closed when the writer stops
	cancel context.CancelFunc
	behind bool // audio was dropped for this stream (said once)
}

// close gives the link up: its stream and its goroutines end.
func (l *sttLink) close() {
	l.cancel()
	l.stream.Close()
}

// sttWrite is audio to send, or a finalize.
type sttWrite struct {
	pcm      []int16
	finalize bool
}

// sttState is the loop's view of STT.
type sttState struct {
	link     *sttLink // nil while there is none
	pending  []pendingFinalize
	finalSeq int
	finals   []string // final transcripts of the turn not yet answered
}

// pendingFinalize is a finalize sent whose session.finalized has not come.
type pendingFinalize struct {
	id              int
	sent, speechEnd time.Time
	timer           *time.Timer
}

// openSTT opens the session's STT stream and its writer and reader.
func (r *run) openSTT(ctx context.Context) error {
	st, err := r.o.STT.Stream(ctx)
	if err != nil {
		return err
	}
	r.o.Attempts.succeeded(provider.StageSTT)
	lctx, cancel := context.WithCancel(ctx)
	l := &sttLink{stream: st, in: make(chan sttWrite, 100), done: make(chan struct{}), cancel: cancel}
	r.stt.link = l
	r.bg.Add(2)
	go r.writeSTT(lctx, l)
	go r.readSTT(lctx, l)
	return nil
}

// writeSTT sends the link's audio and finalizes until the link ends or a
// write fails.
func (r *run) writeSTT(ctx context.Context, l *sttLink) {
	defer r.bg.Done()
	defer close(l.done)
	for {
		var w sttWrite
		select {
		case w = <-l.in:
		case <-ctx.Done():
			return
		}
		var err error
		if w.finalize {
			err = l.stream.Finalize()
		} else {
			err = l.stream.Write(w.pcm)
		}
		if err != nil {
			post(ctx, r.stts, sttMsg{link: l, err: err})
			return
		}
	}
}

// readSTT hands the link's events to the loop until the stream ends.
func (r *run) readSTT(ctx context.Context, l *sttLink) {
	defer r.bg.Done()
	for {
		ev, err := l.stream.Recv()
		if err != nil {
			if err != io.EOF {
				post(ctx, r.stts, sttMsg{link: l, err: err})
			}
			return
		}
		post(ctx, r.stts, sttMsg{link: l, ev: ev})
	}
}

func (r *run) onSTTMsg(ctx context.Context, m sttMsg) error {
	if m.link != r.stt.link {
		return nil // from a stream already given up
	}
	if m.err != nil {
		return r.onSTTFailure(ctx, m.err)
	}
	r.onSTT(ctx, m.ev)
	return nil
}

// onSTTFailure reports an STT failure, counts it, and reopens the
// stream within the tolerance; it returns the error that closes the
// session, or nil.
func (r *run) onSTTFailure(ctx context.Context, err error) error {
	for {
		r.reportFinal(err)
		closing := provider.Terminal(err) || ctx.Err() != nil || r.policy.exceeds(provider.StageSTT, r.o.MaxUnrecoverable)
		if !closing {
			// Heard now, not after the old stream has closed (up to a
			// second with a server that does not answer its close) nor
			// after the reopen (a dial can take seconds).
			r.trace("failure_known", time.Now())
			r.s.fallback.Earcon(fallback.EarconFailed, "stt_failed")
		}
		if r.stt.link != nil {
			r.stt.link.close()
			r.stt.link = nil
		}
		r.dropPending()
		if closing {
			return err
		}
		if err = r.openSTT(ctx); err == nil {
			return nil
		}
	}
}

// dropPending forgets finalizes whose answers can no longer come.
func (r *run) dropPending() {
	for _, p := range r.stt.pending {
		p.timer.Stop()
	}
	r.stt.pending = nil
	r.stt.finals = nil
}

// forwardAudio hands microphone audio to the STT writer. When STT is 2 s
// behind, audio is dropped rather than stalling the microphone, and that
// is said once.
func (r *run) forwardAudio(pcm []int16) {
	l := r.stt.link
	if l == nil {
		return
	}
	select {
	case l.in <- sttWrite{pcm: pcm}:
	default:
		if !l.behind {
			l.behind = true
			r.emit(conversation.Error{Stage: "stt", Message: "speech-to-text is more than 2 s behind: microphone audio is being dropped",
				Retryable: true, Attempt: 1})
		}
	}
}

// finalize asks STT for the turn's final transcript. The loop waits for
// the writer only while it lives (its writes time out), never forever.
func (r *run) finalize(ctx context.Context) {
	l := r.stt.link
	if l == nil {
		return
	}
	select {
	case l.in <- sttWrite{finalize: true}:
	case <-l.done:
		return // its failure is on its way to the loop
	case <-ctx.Done():
		return
	}
	now := time.Now()
	r.trace("finalize_sent", now)
	r.stt.finalSeq++
	id := r.stt.finalSeq
	r.stt.pending = append(r.stt.pending, pendingFinalize{id: id, sent: now, speechEnd: r.listen.speechEnd,
		timer: time.AfterFunc(r.o.FinalizeWait, func() { post(ctx, r.timeouts, id) })})
}

// onFinalizeTimeout: the oldest finalize was not answered within
// FinalizeWait. That is a failed STT request: reported, counted, heard
// (the earcon), and the stream is replaced, so that the late answer, when
// it comes, is on a stream already given up and never joins a later turn.
func (r *run) onFinalizeTimeout(ctx context.Context, id int) error {
	if len(r.stt.pending) == 0 || r.stt.pending[0].id != id {
		return nil
	}
	return r.onSTTFailure(ctx, &provider.TimeoutError{Stage: provider.StageSTT, After: r.o.FinalizeWait})
}

// finalized answers the oldest pending finalize: its turn begins.
func (r *run) finalized(ctx context.Context) {
	p := r.stt.pending[0]
	r.stt.pending = r.stt.pending[1:]
	p.timer.Stop()
	r.userTurn(ctx, p)
}

func (r *run) onSTT(ctx context.Context, ev provider.STTEvent) {
	switch ev.Type {
	case provider.InterimTranscript, provider.PreflightTranscript:
		if ev.Text != "" {
			r.emit(conversation.Transcript{Text: ev.Text})
		}
	case provider.FinalTranscript:
		if ev.Text != "" {
			r.stt.finals = append(r.stt.finals, ev.Text)
			r.policy.heard()
			r.emit(conversation.Transcript{Text: ev.Text, Final: true})
		}
	case provider.Finalized:
		r.trace("finalized", time.Now())
		if len(r.stt.pending) > 0 {
			r.finalized(ctx)
		}
	}
}
