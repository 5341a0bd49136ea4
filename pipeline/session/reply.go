package session

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// errTurnOver cancels what a finished turn left running.
var errTurnOver = errors.New("turn over")

// turn is one reply: LLM stream -> chunker -> TTS utterance -> speaker.
type turn struct {
	r         *run
	n         int
	cancel    context.CancelCauseFunc
	speechEnd time.Time // the user stopped speaking
	finalized time.Time // finalize was sent
	sttDone   time.Time // session.finalized arrived

	mu      sync.Mutex
	text    strings.Builder // the reply as it went to TTS
	metrics conversation.Metrics

	playDone chan struct{} // closed when nothing more of it can reach the speaker
	playOnce sync.Once
	audio    *audioOwed // set by answer before playback starts
}

// stopped waits, at most d, until the turn can write no more audio.
func (t *turn) stopped(d time.Duration) {
	select {
	case <-t.playDone:
	case <-time.After(d):
	}
}

// spoken is the reply so far (what reached TTS).
func (t *turn) spoken() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(t.text.String())
}

func ms(d time.Duration) int64 { return d.Milliseconds() }

// run answers the user: the turn's error, or, when one of the turn's
// watchdogs (owed.go) cancelled it, the watchdog's TimeoutError.
func (t *turn) run(ctx context.Context, history []provider.Message) error {
	err := t.answer(ctx, history)
	if err != nil && ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != errTurnOver {
			return cause
		}
	}
	return err
}

func (t *turn) answer(ctx context.Context, history []provider.Message) error {
	r := t.r
	t.mu.Lock()
	t.metrics = conversation.Metrics{Turn: t.n, EOUMs: ms(t.finalized.Sub(t.speechEnd)), STTMs: ms(t.sttDone.Sub(t.finalized))}
	t.mu.Unlock()

	// TTS opens while the LLM thinks.
	type opened struct {
		u   provider.Utterance
		err error
	}
	ttsReady := make(chan opened, 1)
	go func() {
		u, err := r.o.TTS.Synthesize(ctx)
		if err != nil && ctx.Err() == nil {
			// Known now, not at the LLM's first sentence: with a model
			// streaming at a real pace that came 40 ms later (the
			// TTS-credits signal at the speaker), and the LLM is not
			// paid for a reply nobody can hear.
			t.cancel(err)
		}
		ttsReady <- opened{u, err}
	}()
	var u provider.Utterance
	var ttsErr error
	started := false // the playback goroutine
	taken := false
	getTTS := func() error {
		if !taken {
			o := <-ttsReady
			u, ttsErr, taken = o.u, o.err, true
		}
		return ttsErr
	}
	defer func() {
		// Over: whatever is still opening or playing stops now (a TTS
		// dial must not delay an LLM error's report).
		t.cancel(errTurnOver)
		getTTS()
		if u != nil {
			u.Close()
		}
		if !started {
			t.playOnce.Do(func() { close(t.playDone) })
		}
	}()

	// The LLM owes its first text within AnswerWait of each attempt,
	// whatever keeps its connection alive meanwhile (SSE comments, a slow
	// proxy); a retry's wait (a rate limit ridden out) is not the LLM's
	// silence, and the retries are reported as they come.
	llmOwed := time.AfterFunc(r.o.AnswerWait, func() {
		t.cancel(&provider.TimeoutError{Stage: provider.StageLLM, After: r.o.AnswerWait})
	})
	defer llmOwed.Stop()
	// Heard until the first text: a retry of another turn's request (an
	// interrupted one may still run) must not re-arm a watchdog whose
	// answer came.
	stopListening := r.o.Attempts.listen(provider.StageLLM, func(wait time.Duration) { llmOwed.Reset(wait + r.o.AnswerWait) })
	defer stopListening()
	// TTS owes audio while text waits to be spoken (owed.go).
	audioOwed := newAudioOwed(r.o.AudioWait, func() {
		t.cancel(&provider.TimeoutError{Stage: provider.StageTTS, After: r.o.AudioWait})
	})
	defer audioOwed.stop()
	t.audio = audioOwed

	llmStart := time.Now()
	r.trace("llm_request", llmStart)
	stream, err := r.o.LLM.Chat(ctx, history)
	if err != nil {
		return err
	}
	defer stream.Close()
	r.o.Attempts.succeeded(provider.StageLLM)
	t.mu.Lock()
	t.metrics.LLMTTFTMs = ms(time.Since(llmStart)) // Chat returns at the first text
	t.mu.Unlock()

	// The speaker side runs beside the text side.
	played := make(chan error, 1)
	var firstPush time.Time
	var pushOnce sync.Once
	startPlayback := func() {
		started = true
		go func() {
			defer t.playOnce.Do(func() { close(t.playDone) })
			err := t.play(ctx, u, &firstPush)
			if err != nil && ctx.Err() == nil {
				t.cancel(err) // the TTS stream or the speaker failed: the LLM's next piece is not awaited
			}
			played <- err
		}()
	}
	var c chunker
	pushes := 0
	push := func(piece string) error {
		if pushes == 0 {
			r.trace("first_sentence", time.Now())
		}
		if err := getTTS(); err != nil {
			return err
		}
		pushOnce.Do(func() {
			firstPush = time.Now()
			startPlayback()
		})
		if ctx.Err() != nil {
			return context.Cause(ctx) // interrupted: say nothing more
		}
		t.mu.Lock()
		t.text.WriteString(piece + " ")
		t.mu.Unlock()
		r.emit(conversation.AgentText{Text: piece})
		if pushes == 0 {
			r.trace("tts_push", time.Now())
		}
		pushes++
		if err := u.Push(piece); err != nil {
			return err
		}
		audioOwed.pushed()
		return nil
	}
	for first := true; stream.Next(); first = false {
		if first {
			stopListening()
			llmOwed.Stop()
		}
		for _, piece := range c.add(stream.Current()) {
			if err := push(piece); err != nil {
				return err
			}
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if rest := c.rest(); rest != "" {
		if err := push(rest); err != nil {
			return err
		}
	}
	reply := t.spoken()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	r.emit(conversation.AgentText{Text: reply, Final: true})
	if reply == "" {
		return nil
	}
	if err := u.Flush(); err != nil {
		return err
	}
	audioOwed.flushed()
	return <-played
}

// play sends the utterance's audio to the speaker, resampled, and waits
// until it has been heard.
func (t *turn) play(ctx context.Context, u provider.Utterance, firstPush *time.Time) error {
	r := t.r
	return playUtterance(ctx, u, r.o.TTS.SampleRate(), r.o.Speaker, playHooks{
		level:      r.o.OutputLevel,
		recvStart:  t.audio.recvStart,
		recvEnd:    t.audio.recvEnd,
		ended:      t.audio.stop,
		firstAudio: func() { r.trace("first_audio", time.Now()) },
		firstWrite: func() {
			now := time.Now()
			r.trace("first_write", now)
			r.o.Attempts.succeeded(provider.StageTTS)
			t.mu.Lock()
			t.metrics.TTSTTFBMs = ms(now.Sub(*firstPush))
			t.metrics.E2EMs = ms(now.Sub(t.speechEnd))
			t.mu.Unlock()
			post(ctx, r.replies, replyMsg{t: t})
		},
	})
}

// playHooks are optional observers of playUtterance.
type playHooks struct {
	level      func(dbfs float64) // each write's level
	recvStart  func()             // a wait for TTS begins
	recvEnd    func(audio bool)   // and ends, with audio or not
	ended      func()             // the utterance's audio has all come
	firstAudio func()             // the first audio came from TTS
	firstWrite func()             // and reached the speaker
}

// playUtterance sends u's audio (at rate) to spk, resampled, until u is
// done, then waits until it has been heard. A cancelled ctx stops it
// before the next write, so nothing of a cancelled reply follows a Flush.
func playUtterance(ctx context.Context, u provider.Utterance, rate int, spk audio.Sink, h playHooks) error {
	var rs *audio.Resampler
	if out := spk.Format().SampleRate; rate != out {
		var err error
		if rs, err = audio.NewResampler(rate, out); err != nil {
			return err
		}
	}
	stopped := func(err error) error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return err
	}
	var buf []int16
	for first := true; ; first = false {
		if h.recvStart != nil {
			h.recvStart()
		}
		pcm, err := u.Recv()
		if h.recvEnd != nil {
			h.recvEnd(err == nil && len(pcm) > 0)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if first && h.firstAudio != nil {
			h.firstAudio()
		}
		if rs != nil {
			buf = rs.Process(buf[:0], pcm)
			pcm = buf
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if h.level != nil {
			h.level(audio.RMS(pcm))
		}
		if _, err := spk.Write(ctx, pcm); err != nil {
			return stopped(err)
		}
		if first && h.firstWrite != nil {
			h.firstWrite()
		}
	}
	if h.ended != nil {
		h.ended() // all of it came: the rest is the speaker's to play
	}
	if err := spk.Drain(ctx); err != nil {
		return stopped(err)
	}
	return nil
}

// snapshot returns the turn's metrics.
func (t *turn) snapshot() conversation.Metrics {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.metrics
}

// speak says text through TTS to the speaker (the configured error
// message) and waits until it has been heard.
func speak(ctx context.Context, tts provider.TTS, spk audio.Sink, text string) error {
	u, err := tts.Synthesize(ctx)
	if err != nil {
		return err
	}
	defer u.Close()
	if err := u.Push(text); err != nil {
		return err
	}
	if err := u.Flush(); err != nil {
		return err
	}
	return playUtterance(ctx, u, tts.SampleRate(), spk, playHooks{})
}
