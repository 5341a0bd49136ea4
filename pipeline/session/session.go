// Package session is the voice conversation: microphone -> voice activity
// detection -> STT -> (end of the user's turn) LLM -> sentence chunker ->
// TTS -> speaker, with barge-in, an error policy, and a fallback that
// never depends on TTS. Everything it does is reported as Events.
package session

import (
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// ErrInterrupted is the cause of a turn cancelled by barge-in.
var ErrInterrupted = errors.New("interrupted by the user")

// Options configure a session. Zero durations take the defaults.
type Options struct {
	LLM provider.LLM
	STT provider.STT
	TTS provider.TTS

	Mic     audio.Source // audio.Pipeline format
	Speaker audio.Sink   // mono, any rate

	SystemPrompt string

	StartSpeech time.Duration // voice before the user counts as speaking (default 200 ms)
	EndSilence  time.Duration // silence that ends the user's turn (default 500 ms)
	BargeIn     time.Duration // speech that interrupts the agent (default 500 ms)
	NoBargeIn   bool
	// HalfDuplex raises the voice threshold while the agent speaks, so
	// laptop speakers do not make it interrupt itself (default 10 dB).
	HalfDuplex float64

	// MaxUnrecoverable closes the session when one stage has more
	// unrecoverable errors than this (default 3; 0 closes at the first).
	// A terminal error closes at once. Negative means the default.
	MaxUnrecoverable int

	Fallback fallback.Options
	Events   *Emitter

	// InputLevel and OutputLevel, when set, hear the level of every
	// microphone frame (with its bands) and of every write to the speaker
	// (dBFS), for meters.
	InputLevel  func(audio.Levels)
	OutputLevel func(float64)

	// Trace, when set, hears the instants the latency benchmarks measure:
	// speech_end, finalize_sent, finalized, llm_request, first_sentence,
	// tts_push, first_audio, first_write, terminal_error.
	Trace func(mark string, at time.Time)
}

// MeterBands is how many frequency bands InputLevel reports.
const MeterBands = 14

// Defaults of Options.
const (
	DefaultStartSpeech      = 200 * time.Millisecond
	DefaultEndSilence       = 500 * time.Millisecond
	DefaultBargeIn          = 500 * time.Millisecond
	DefaultHalfDuplex       = 10.0
	DefaultMaxUnrecoverable = 3
	DefaultSystemPrompt     = "You are a helpful voice assistant. Answer in one to three short sentences."
	// finalizeWait bounds the wait for session.finalized.
	finalizeWait = 5 * time.Second
	// closeWait bounds the teardown of providers.
	closeWait = 3 * time.Second
	// fallbackSpeech bounds speaking --error-message through TTS.
	fallbackSpeech = 6 * time.Second
)

func (o *Options) defaults() {
	if o.StartSpeech <= 0 {
		o.StartSpeech = DefaultStartSpeech
	}
	if o.EndSilence <= 0 {
		o.EndSilence = DefaultEndSilence
	}
	if o.BargeIn <= 0 {
		o.BargeIn = DefaultBargeIn
	}
	if o.HalfDuplex == 0 {
		o.HalfDuplex = DefaultHalfDuplex
	}
	if o.MaxUnrecoverable < 0 {
		o.MaxUnrecoverable = DefaultMaxUnrecoverable
	}
	if o.SystemPrompt == "" {
		o.SystemPrompt = DefaultSystemPrompt
	}
}

// Session is one conversation; Run drives it.
type Session struct {
	o  Options
	ev *Emitter

	mu       sync.Mutex
	attempts map[provider.Stage]int // retries reported in the current request, per stage
	lastClip fallback.Clip          // the clip the last close chose

	muted  atomic.Bool
	ctl    chan any // from the interface: userText
	extras sync.WaitGroup
}

// userText is a turn typed instead of spoken.
type userText string

// SetMuted mutes the microphone: silence goes on to STT, so the stream
// stays open, and no speech is detected.
func (s *Session) SetMuted(m bool) { s.muted.Store(m) }

// Muted reports SetMuted's state.
func (s *Session) Muted() bool { return s.muted.Load() }

// Say makes text the user's next turn, without STT (text mode: usable
// when STT is the exhausted stage). It is ignored when the session is not
// running or busy taking another.
func (s *Session) Say(text string) {
	select {
	case s.ctl <- userText(text):
	default:
	}
}

// ReplayFallback plays the fallback clip again (the one the last close
// chose, else the quota clip) straight to the speaker, for manual QA; it
// works after the session has closed too. Its fallback event has reason
// "replay".
func (s *Session) ReplayFallback() {
	s.mu.Lock()
	clip := s.lastClip
	s.mu.Unlock()
	if clip == "" {
		clip = fallback.Quota
	}
	s.extras.Add(1)
	go func() {
		defer s.extras.Done()
		ev := Fallback{Clip: string(clip), Reason: "replay"}
		pcm, err := fallback.Samples(clip, s.o.Fallback)
		if err == nil {
			err = fallback.Play(context.Background(), s.o.Speaker, pcm)
		}
		ev.OK = err == nil
		if err != nil {
			ev.Error = safetext.Sanitize(err.Error(), 200)
		}
		s.ev.Emit(ev)
	}()
}

// Wait waits for replays still playing.
func (s *Session) Wait() { s.extras.Wait() }

// New checks the options.
func New(o Options) (*Session, error) {
	o.defaults()
	if o.LLM == nil || o.STT == nil || o.TTS == nil || o.Mic == nil || o.Speaker == nil || o.Events == nil {
		return nil, errors.New("session: LLM, STT, TTS, Mic, Speaker and Events are required")
	}
	if f := o.Mic.Format(); f != audio.Pipeline {
		return nil, errors.New("session: the microphone must deliver 16 kHz mono")
	}
	if o.Speaker.Format().Channels != 1 {
		return nil, errors.New("session: the speaker must be mono")
	}
	return &Session{o: o, ev: o.Events, attempts: map[provider.Stage]int{}, ctl: make(chan any, 4)}, nil
}

// OnRetry is the providers' retry hook: every failed attempt that will be
// retried becomes an error event. Wire it into provider.Retry.OnRetry.
func (s *Session) OnRetry(attempt int, err error, wait time.Duration) {
	var c provider.Classified
	if errors.As(err, &c) {
		s.mu.Lock()
		s.attempts[c.ErrStage()] = attempt
		s.mu.Unlock()
	}
	e := ErrorInfo(err, attempt)
	e.RetryInMs = max(wait.Milliseconds(), 1)
	s.ev.Emit(*e)
}

// resetAttempts forgets a stage's retries once a request succeeded.
func (s *Session) resetAttempts(stage provider.Stage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.attempts, stage)
}

// finalAttempt is the attempt number of a request's last failure, and
// forgets the stage's retries.
func (s *Session) finalAttempt(err error) int {
	var c provider.Classified
	if !errors.As(err, &c) {
		return 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.attempts[c.ErrStage()] + 1
	delete(s.attempts, c.ErrStage())
	return n
}

// loop messages
type (
	micFrame  []int16
	sttEvent  struct{ ev provider.STTEvent }
	sttFailed struct {
		stream provider.STTStream
		err    error
	}
	turnSpeaking struct{ t *turn }
	turnDone     struct {
		t   *turn
		err error
	}
)

// Run holds the conversation until ctx ends (close reason "user"), the
// microphone's input ends and the last reply has played ("input_ended"),
// or an error closes it ("error": the fallback plays first). It returns
// the error that closed the session, or nil.
func (s *Session) Run(ctx context.Context) error {
	r := &run{s: s, o: s.o, msgs: make(chan any, 256), counts: map[provider.Stage]int{},
		history: []provider.Message{{Role: "system", Content: s.o.SystemPrompt}}}
	return r.loop(ctx)
}

// run is the state of one Run; only the loop goroutine touches it.
type run struct {
	s    *Session
	o    Options
	msgs chan any

	agent, user string
	vad         *audio.VoiceDetector
	meter       *audio.Meter
	voicedRun   int // frames
	silentRun   int
	speaking    bool // the user
	speechEnd   time.Time

	stt       provider.STTStream
	sttIn     chan any      // []int16 or finalizeReq, to the STT writer
	sttDone   chan struct{} // closed when that writer stops
	sttBehind bool          // audio was dropped for this stream (said once)
	pending   []pendingFinalize
	finalSeq  int
	finals    []string

	turn        *turn
	turns       int
	history     []provider.Message
	counts      map[provider.Stage]int
	ttsFailed   bool
	inputDone   bool
	lastAttempt int // of the last final error
	bg          sync.WaitGroup
}

type finalizeReq struct{}
type finalizeTimeout struct{ id int }

// pendingFinalize is a finalize sent whose session.finalized has not come.
type pendingFinalize struct {
	id              int
	sent, speechEnd time.Time
	timer           *time.Timer
}
type micEnded struct{ err error }

const frameDur = 20 * time.Millisecond

func (r *run) trace(mark string, at time.Time) {
	if r.o.Trace != nil {
		r.o.Trace(mark, at)
	}
}

func (r *run) emitState() { r.s.ev.Emit(State{Agent: r.agent, User: r.user}) }

func (r *run) setAgent(state string) {
	if r.agent != state {
		r.agent = state
		r.emitState()
	}
}

func (r *run) loop(ctx context.Context) (closeErr error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		// Everything honours ctx; a provider that does not gets 3 s,
		// then Run returns anyway.
		done := make(chan struct{})
		go func() { r.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}()
	r.agent, r.user = "initializing", "listening"
	r.emitState()
	r.vad = audio.NewVoiceDetector(audio.PipelineRate)
	r.meter = audio.NewMeter(audio.PipelineRate, MeterBands)

	if err := r.openSTT(ctx); err != nil {
		if err = r.onSTTFailure(ctx, err); err != nil {
			return r.close(ctx, err)
		}
	}
	r.bg.Add(1)
	go r.readMic(ctx)
	r.setAgent("listening")

	for {
		var msg any
		select {
		case <-ctx.Done():
			return r.close(ctx, nil)
		case msg = <-r.msgs:
		case msg = <-r.s.ctl:
		}
		var err error
		switch m := msg.(type) {
		case micFrame:
			r.onAudio(ctx, m)
		case micEnded:
			if m.err != nil {
				err = m.err
				break
			}
			// The input is over: what follows is silence, so the
			// current turn ends as it would in a quiet room.
			r.inputDone = true
			r.onAudio(ctx, make([]int16, int(r.o.EndSilence/frameDur+1)*audio.PipelineRate/50))
		case sttEvent:
			r.onSTT(ctx, m.ev)
		case userText:
			text := safetext.Sanitize(string(m), 2000)
			if text != "" {
				r.s.ev.Emit(Transcript{Text: text, Final: true})
				r.finals = []string{text}
				now := time.Now()
				r.userTurn(ctx, pendingFinalize{sent: now, speechEnd: now})
			}
		case finalizeTimeout:
			if len(r.pending) > 0 && r.pending[0].id == m.id {
				r.finalized(ctx) // no session.finalized: go with what came
			}
		case sttFailed:
			if m.stream == r.stt {
				err = r.onSTTFailure(ctx, m.err)
			}
		case turnSpeaking:
			if m.t == r.turn {
				r.setAgent("speaking")
				r.vad.Boost = r.o.HalfDuplex
				r.counts[provider.StageLLM], r.counts[provider.StageTTS] = 0, 0
			}
		case turnDone:
			err = r.onTurnDone(ctx, m.t, m.err)
		}
		if err != nil {
			return r.close(ctx, err)
		}
		if r.inputDone && !r.speaking && len(r.pending) == 0 && r.turn == nil {
			return r.close(ctx, io.EOF)
		}
	}
}

// send posts a message to the loop unless ctx is over.
func (r *run) send(ctx context.Context, m any) {
	select {
	case r.msgs <- m:
	case <-ctx.Done():
	}
}

func (r *run) readMic(ctx context.Context) {
	defer r.bg.Done()
	buf := make([]int16, audio.PipelineRate/50)
	for {
		n, err := r.o.Mic.Read(ctx, buf)
		if n > 0 {
			r.send(ctx, micFrame(append([]int16(nil), buf[:n]...)))
		}
		if err == io.EOF {
			r.send(ctx, micEnded{})
			return
		}
		if err != nil {
			if ctx.Err() == nil {
				r.send(ctx, micEnded{err: err})
			}
			return
		}
	}
}

// openSTT opens the session's STT stream and its writer and reader.
func (r *run) openSTT(ctx context.Context) error {
	st, err := r.o.STT.Stream(ctx)
	if err != nil {
		return err
	}
	r.s.resetAttempts(provider.StageSTT)
	r.stt = st
	in := make(chan any, 100) // 2 s of audio
	done := make(chan struct{})
	r.sttIn, r.sttDone = in, done
	r.sttBehind = false
	r.bg.Add(2)
	go func() { // writer: audio and finalize, in order
		defer r.bg.Done()
		defer close(done)
		for {
			var m any
			select {
			case m = <-in:
			case <-ctx.Done():
				return
			}
			var err error
			switch v := m.(type) {
			case []int16:
				err = st.Write(v)
			case finalizeReq:
				err = st.Finalize()
			case nil:
				return
			}
			if err != nil {
				r.send(ctx, sttFailed{st, err})
				return
			}
		}
	}()
	go func() { // reader
		defer r.bg.Done()
		for {
			ev, err := st.Recv()
			if err != nil {
				if err != io.EOF {
					r.send(ctx, sttFailed{st, err})
				}
				return
			}
			r.send(ctx, sttEvent{ev})
		}
	}()
	return nil
}

// reportFinal emits a request's final failure and returns it.
func (r *run) reportFinal(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if provider.Terminal(err) {
		r.trace("terminal_error", time.Now())
	}
	r.lastAttempt = r.s.finalAttempt(err)
	r.s.ev.Emit(*ErrorInfo(err, r.lastAttempt))
	return err
}

// onSTTFailure reports an STT failure, counts it, and reopens the
// stream within the tolerance; it returns the error that closes the
// session, or nil.
func (r *run) onSTTFailure(ctx context.Context, err error) error {
	for {
		r.reportFinal(err)
		if r.stt != nil {
			r.stt.Close()
			r.stt = nil
		}
		r.dropPending()
		if provider.Terminal(err) || ctx.Err() != nil {
			return err
		}
		r.counts[provider.StageSTT]++
		if r.counts[provider.StageSTT] > r.o.MaxUnrecoverable {
			return err
		}
		if err = r.openSTT(ctx); err == nil {
			return nil
		}
	}
}

// dropPending forgets finalizes whose answers can no longer come.
func (r *run) dropPending() {
	for _, p := range r.pending {
		p.timer.Stop()
	}
	r.pending = nil
	r.finals = nil
}

// onAudio runs voice detection on microphone audio and forwards it to STT.
func (r *run) onAudio(ctx context.Context, pcm []int16) {
	if r.s.muted.Load() {
		pcm = make([]int16, len(pcm))
	}
	if r.o.InputLevel != nil {
		r.o.InputLevel(r.meter.Update(pcm))
	}
	if r.stt != nil {
		select {
		case r.sttIn <- pcm:
		default: // STT is 2 s behind: drop rather than stall the microphone, and say so once
			if !r.sttBehind {
				r.sttBehind = true
				r.s.ev.Emit(Error{Stage: "stt", Message: "speech-to-text is more than 2 s behind: microphone audio is being dropped",
					Retryable: true, Attempt: 1})
			}
		}
	}
	r.vad.Feed(pcm, func(voiced bool, _ float64) {
		if voiced {
			r.voicedRun++
			r.silentRun = 0
		} else {
			r.silentRun++
			if r.silentRun > 2 { // 40 ms of hangover keeps words together
				r.voicedRun = 0
			}
		}
		r.onVoiceFrame(ctx)
	})
}

func (r *run) onVoiceFrame(ctx context.Context) {
	voiced := time.Duration(r.voicedRun) * frameDur
	if !r.speaking && voiced >= r.o.StartSpeech {
		if r.turn != nil && r.o.NoBargeIn {
			return // the agent has the floor
		}
		r.speaking = true
		r.user = "speaking"
		r.emitState()
		// While the agent only thinks, the reply waits: if this speech
		// yields a transcript, its turn supersedes the reply (userTurn);
		// a cough does not cost the user the answer.
	}
	if r.speaking && r.turn != nil && r.agent == "speaking" && voiced >= r.o.BargeIn && !r.o.NoBargeIn {
		r.interrupt()
	}
	if r.speaking && time.Duration(r.silentRun)*frameDur >= r.o.EndSilence {
		r.speaking = false
		r.user = "listening"
		r.emitState()
		r.speechEnd = time.Now().Add(-r.o.EndSilence)
		r.trace("speech_end", r.speechEnd)
		r.finalize(ctx)
	}
}

// finalize asks STT for the turn's final transcript. The loop waits for
// the writer only while it lives (its writes time out), never forever.
func (r *run) finalize(ctx context.Context) {
	if r.stt == nil {
		return
	}
	select {
	case r.sttIn <- finalizeReq{}:
	case <-r.sttDone:
		return // its failure is on its way to the loop
	case <-ctx.Done():
		return
	}
	now := time.Now()
	r.trace("finalize_sent", now)
	r.finalSeq++
	id := r.finalSeq
	r.pending = append(r.pending, pendingFinalize{id: id, sent: now, speechEnd: r.speechEnd,
		timer: time.AfterFunc(finalizeWait, func() { r.send(ctx, finalizeTimeout{id}) })})
}

// finalized answers the oldest pending finalize: its turn begins.
func (r *run) finalized(ctx context.Context) {
	p := r.pending[0]
	r.pending = r.pending[1:]
	p.timer.Stop()
	r.userTurn(ctx, p)
}

func (r *run) onSTT(ctx context.Context, ev provider.STTEvent) {
	switch ev.Type {
	case provider.InterimTranscript, provider.PreflightTranscript:
		if ev.Text != "" {
			r.s.ev.Emit(Transcript{Text: ev.Text})
		}
	case provider.FinalTranscript:
		if ev.Text != "" {
			r.finals = append(r.finals, ev.Text)
			r.counts[provider.StageSTT] = 0
			r.s.ev.Emit(Transcript{Text: ev.Text, Final: true})
		}
	case provider.Finalized:
		r.trace("finalized", time.Now())
		if len(r.pending) > 0 {
			r.finalized(ctx)
		}
	}
}

// userTurn starts the agent's reply to what the user said.
func (r *run) userTurn(ctx context.Context, p pendingFinalize) {
	text := strings.Join(r.finals, " ")
	r.finals = nil
	if text == "" {
		return
	}
	if r.turn != nil {
		if r.o.NoBargeIn {
			return // spoken over the agent: ignored
		}
		r.interrupt()
	}
	r.history = append(r.history, provider.Message{Role: "user", Content: text})
	r.turns++
	t := &turn{r: r, n: r.turns, speechEnd: p.speechEnd, finalized: p.sent, sttDone: time.Now(), playDone: make(chan struct{})}
	var tctx context.Context
	tctx, t.cancel = context.WithCancelCause(ctx)
	r.turn = t
	r.setAgent("thinking")
	history := slices.Clone(r.history)
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		err := t.run(tctx, history)
		r.send(ctx, turnDone{t, err})
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
	r.vad.Boost = 0
	reply := t.spoken()
	if reply != "" {
		r.history = append(r.history, provider.Message{Role: "assistant", Content: reply + " [cut short: the user interrupted]"})
		r.s.ev.Emit(AgentText{Text: reply, Final: true, Interrupted: true})
	}
	r.setAgent("listening")
}

func (r *run) onTurnDone(ctx context.Context, t *turn, err error) error {
	if t != r.turn {
		return nil // an interrupted turn finishing
	}
	r.turn = nil
	r.vad.Boost = 0
	if err == nil {
		r.setAgent("listening")
		r.history = append(r.history, provider.Message{Role: "assistant", Content: t.spoken()})
		r.s.ev.Emit(t.snapshot())
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
		r.ttsFailed = true
	}
	if provider.Terminal(err) {
		return err
	}
	r.counts[stage]++
	if r.counts[stage] > r.o.MaxUnrecoverable {
		return err
	}
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
	}
	r.o.Speaker.Flush()
	r.dropPending()
	ev := Close{Reason: "user"}
	var closeErr error
	switch {
	case cause == io.EOF:
		ev.Reason = "input_ended"
	case cause != nil && !(errors.Is(cause, context.Canceled) && ctx.Err() != nil):
		ev.Reason = "error"
		ev.Error = ErrorInfo(cause, max(r.lastAttempt, 1))
		closeErr = cause
		r.playFallback(cause) // first: the signal must not wait for teardown
	}
	if r.stt != nil {
		done := make(chan struct{})
		go func() { r.stt.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}
	r.s.ev.Emit(ev)
	return closeErr
}

// playFallback plays the decided clip straight to the speaker, or speaks
// the configured message when TTS is healthy (the clip when that fails).
// It is bounded in time, and reports its own failure in its one event.
func (r *run) playFallback(cause error) {
	var c provider.Classified
	ttsFailed := r.ttsFailed || (errors.As(cause, &c) && c.ErrStage() == provider.StageTTS)
	d := fallback.Decide(cause, fallback.State{TTSFailed: ttsFailed}, r.o.Fallback)
	if d.Clip != "" {
		r.s.mu.Lock()
		r.s.lastClip = d.Clip
		r.s.mu.Unlock()
	} else if d.Reason == "quota_exhausted" {
		r.s.mu.Lock()
		r.s.lastClip = fallback.Quota
		r.s.mu.Unlock()
	}
	ev := Fallback{Clip: string(d.Clip), Text: d.Text, Reason: d.Reason}
	if d.None() {
		r.s.ev.Emit(ev) // sound off by choice; ok stays false
		return
	}
	var problems []string
	if d.Text != "" {
		ctx, cancel := context.WithTimeout(context.Background(), fallbackSpeech)
		err := speak(ctx, r.o.TTS, r.o.Speaker, d.Text)
		cancel()
		if err == nil {
			ev.OK = true
			r.s.ev.Emit(ev)
			return
		}
		// TTS let us down after all: the clip.
		problems = append(problems, "speaking the message: "+safetext.Sanitize(err.Error(), 200))
		r.o.Speaker.Flush()
		d.Clip = fallback.Unavailable
		if q, ok := provider.AsQuota(cause); ok && q.IsTerminal() {
			d.Clip = fallback.Quota
		}
		ev.Clip = string(d.Clip)
	}
	pcm, err := fallback.Samples(d.Clip, r.o.Fallback)
	if err == nil {
		err = fallback.Play(context.Background(), r.o.Speaker, pcm) // bounded by the clip's length
	}
	ev.OK = err == nil
	if err != nil {
		problems = append(problems, safetext.Sanitize(err.Error(), 200))
	}
	ev.Error = strings.Join(problems, "; ")
	r.s.ev.Emit(ev)
}
