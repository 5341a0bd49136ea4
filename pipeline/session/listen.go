package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Turn-taking: the microphone's frames go to voice detection; enough voice
// makes the user speaking, enough silence after it ends the user's turn
// (and asks STT for its final transcript); voice over the agent's reply
// interrupts it (barge-in).

const frameDur = 20 * time.Millisecond

// listener is what voice detection knows of the user.
type listener struct {
	vad       *audio.VoiceDetector
	meter     *audio.Meter
	voicedRun int // frames
	silentRun int
	speaking  bool // the user
	speechEnd time.Time
	// For an STT that takes turns only (provider.TurnAudio): the audio
	// before the user is speaking, kept for the pre-roll.
	preroll [][]int16
	held    int // samples in preroll
}

func newListener() listener {
	return listener{vad: audio.NewVoiceDetector(audio.PipelineRate), meter: audio.NewMeter(audio.PipelineRate, MeterBands)}
}

func (r *run) readMic(ctx context.Context, mic audio.Source) {
	defer r.bg.Done()
	buf := make([]int16, audio.PipelineRate/50)
	for {
		n, err := mic.Read(ctx, buf)
		if n > 0 {
			post(ctx, r.mics, micMsg{pcm: slices.Clone(buf[:n])})
		}
		if err == io.EOF {
			post(ctx, r.mics, micMsg{end: true})
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				post(ctx, r.mics, micMsg{end: true, err: err})
			}
			return
		}
	}
}

// onAudio runs voice detection on microphone audio and forwards it to STT.
func (r *run) onAudio(ctx context.Context, pcm []int16) {
	if r.s.muted.Load() {
		pcm = make([]int16, len(pcm))
	}
	if r.o.InputLevel != nil {
		r.o.InputLevel(r.listen.meter.Update(pcm))
	}
	l := &r.listen
	if !r.turnAudio || l.speaking {
		r.forwardAudio(pcm)
	} else {
		r.holdPreroll(pcm)
	}
	l.vad.Feed(pcm, func(voiced bool, _ float64) {
		if voiced {
			l.voicedRun++
			l.silentRun = 0
		} else {
			l.silentRun++
			if l.silentRun > 2 { // 40 ms of hangover keeps words together
				l.voicedRun = 0
			}
		}
		r.onVoiceFrame(ctx)
	})
}

// holdPreroll keeps the last PreRoll of audio while the user is not
// speaking; the turn's first words are in it when speech is detected.
func (r *run) holdPreroll(pcm []int16) {
	l := &r.listen
	l.preroll = append(l.preroll, pcm)
	l.held += len(pcm)
	limit := int(r.o.PreRoll.Seconds() * audio.PipelineRate)
	for len(l.preroll) > 1 && l.held-len(l.preroll[0]) >= limit {
		l.held -= len(l.preroll[0])
		l.preroll = l.preroll[1:]
	}
}

// sendPreroll sends the held audio, the start of the user's turn.
func (r *run) sendPreroll() {
	l := &r.listen
	for _, pcm := range l.preroll {
		r.forwardAudio(pcm)
	}
	l.preroll, l.held = nil, 0
}

func (r *run) onVoiceFrame(ctx context.Context) {
	l := &r.listen
	voiced := time.Duration(l.voicedRun) * frameDur
	if !l.speaking && voiced >= r.o.StartSpeech {
		if r.turn != nil && r.o.NoBargeIn {
			return // the agent has the floor
		}
		l.speaking = true
		r.setUser("speaking")
		r.sendPreroll()
		// While the agent only thinks, the reply waits: if this speech
		// yields a transcript, its turn supersedes the reply (userTurn);
		// a cough does not cost the user the answer.
	}
	if l.speaking && r.turn != nil && r.agent == "speaking" && voiced >= r.o.BargeIn && !r.o.NoBargeIn {
		r.interrupt()
	}
	if l.speaking && time.Duration(l.silentRun)*frameDur >= r.o.EndSilence {
		l.speaking = false
		r.setUser("listening")
		l.speechEnd = time.Now().Add(-r.o.EndSilence)
		r.trace("speech_end", l.speechEnd)
		r.finalize(ctx)
	}
}

// userTurn starts the agent's reply to what the user said.
func (r *run) userTurn(ctx context.Context, p pendingFinalize) {
	text := strings.Join(r.stt.finals, " ")
	r.stt.finals = nil
	if text == "" {
		return
	}
	if r.turn != nil {
		if r.o.NoBargeIn {
			return // spoken over the agent: ignored
		}
		r.interrupt()
	}
	r.history = bounded(append(r.history, provider.Message{Role: "user", Content: text}), r.o.HistoryTurns, r.o.HistoryChars)
	r.turnCount++
	t := &turn{r: r, n: r.turnCount, speechEnd: p.speechEnd, finalized: p.sent, sttDone: time.Now(), playDone: make(chan struct{})}
	var tctx context.Context
	tctx, t.cancel = context.WithCancelCause(ctx)
	r.turn = t
	r.setAgent("thinking")
	history := slices.Clone(r.history)
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		err := t.run(tctx, history)
		post(ctx, r.replies, replyMsg{t: t, done: true, err: err})
	}()
}

// interrupt cancels the agent's turn and silences the speaker at once.
func (r *run) interrupt() {
	t := r.turn
	if t == nil {
		return
	}
	t.cancel(ErrInterrupted)
	t.stopped(200 * time.Millisecond) // its last frame must not land after the flush
	r.o.Speaker.Flush()
	r.turn = nil
	r.listen.vad.Boost, r.listen.vad.Residue = 0, 0
	reply := t.spoken()
	if reply != "" {
		r.history = append(r.history, provider.Message{Role: "assistant", Content: reply + " [cut short: the user interrupted]"})
		r.emit(conversation.AgentText{Text: reply, Final: true, Interrupted: true})
	}
	r.setAgent("listening")
}

// A microphone that fails is a device problem, not the assistant's: the
// user is told at once (an error event of stage device with a hint, the
// device earcon), the session goes on (typed turns work), and the
// microphone is reopened with a growing pause; only when that has failed
// for MicRetryFor does the session close, with the clip that says the
// microphone stopped.

func micError(err error) *audio.DeviceError {
	var dev *audio.DeviceError
	if errors.As(err, &dev) {
		return dev
	}
	return &audio.DeviceError{Direction: "input", Device: "microphone", Op: "read", Err: err}
}

func (r *run) onMicFailure(ctx context.Context, err error) error {
	dev := micError(err)
	if r.o.ReopenMic == nil {
		return dev
	}
	r.emit(*conversation.ErrorInfo(dev, 1))
	r.trace("failure_known", time.Now())
	r.s.fallback.Earcon(fallback.EarconDevice, "microphone_lost")
	r.mic.Close()
	r.mic = nil
	if r.listen.speaking { // the turn ends with what was heard
		r.listen.speaking = false
		r.setUser("listening")
		r.listen.speechEnd = time.Now()
		r.finalize(ctx)
	}
	r.listen.voicedRun, r.listen.silentRun = 0, 0
	r.bg.Add(1)
	go r.reopenMic(ctx, dev)
	return nil
}

// reopenMic tries to open the microphone again until one delivers audio,
// or MicRetryFor has passed.
func (r *run) reopenMic(ctx context.Context, failed error) {
	defer r.bg.Done()
	deadline := time.Now().Add(r.o.MicRetryFor)
	pause := 250 * time.Millisecond
	last := failed
	buf := make([]int16, audio.PipelineRate/50)
	for {
		src, err := r.o.ReopenMic(ctx)
		if err == nil {
			// Open is not enough: it must deliver (a stalled device
			// opens, then says nothing).
			n, rerr := src.Read(ctx, buf)
			if n > 0 {
				post(ctx, r.mics, micMsg{back: src, pcm: slices.Clone(buf[:n])})
				return
			}
			src.Close()
			err = rerr
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			post(ctx, r.mics, micMsg{gaveUp: true, err: micError(fmt.Errorf("not back after %s: %w", r.o.MicRetryFor, last))})
			return
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, 4*time.Second)
	}
}

func (r *run) onMicBack(ctx context.Context, src audio.Source, first []int16) {
	r.mic, r.micOpened = src, true
	r.emit(conversation.Device{Device: "microphone", Stage: "device", OK: true, Message: "the microphone works again"})
	r.bg.Add(1)
	go r.readMic(ctx, src)
	r.onAudio(ctx, first)
}
