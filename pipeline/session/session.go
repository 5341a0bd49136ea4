// Package session is the local voice conversation: microphone -> voice
// activity detection -> STT -> (end of the user's turn) LLM -> sentence
// chunker -> TTS -> speaker, with barge-in and an error policy. It is a
// conversation.Conversation; what the user hears when it fails is the
// policy every conversation shares (conversation.FallbackPlayer).
//
// Files by concern: session.go (options, controls), loop.go (the event
// loop and its messages), listen.go (microphone, turn-taking, barge-in),
// stt.go (the STT stream and finalize bookkeeping), reply.go (one reply:
// LLM -> chunker -> TTS -> speaker), close.go (the error policy and the
// close), attempts.go (each request's retries, reported as events).
package session

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// ErrInterrupted is the cause of a turn cancelled by barge-in.
var ErrInterrupted = errors.New("interrupted by the user")

// Options configure a session. A zero value means the default, a negative
// one "none" (as in provider.Retry).
type Options struct {
	LLM provider.LLM
	STT provider.STT
	TTS provider.TTS

	Mic     audio.Source // audio.Pipeline format
	Speaker audio.Sink   // mono, any rate
	// ReopenMic, when set, opens the microphone again after it failed
	// (unplugged, stalled, its server gone). The session tries with a
	// growing pause for MicRetryFor (default 30 s) and goes on meanwhile
	// (typed turns work); then it closes. Nil: a failed microphone closes
	// the session at once. The session closes a microphone it replaced
	// and the one it opened last.
	ReopenMic   func(ctx context.Context) (audio.Source, error)
	MicRetryFor time.Duration

	SystemPrompt string
	// HistoryTurns and HistoryChars bound the conversation resent to the
	// LLM each turn (defaults 20 turns, 24000 characters): the system
	// prompt stays, the oldest turns go first.
	HistoryTurns, HistoryChars int

	StartSpeech time.Duration // voice before the user counts as speaking (default 200 ms)
	// PreRoll is the audio before detected speech that an STT taking turns
	// only (provider.TurnAudio) is sent with the turn (default
	// StartSpeech + 300 ms): the first syllables are quieter than the rest.
	PreRoll    time.Duration
	EndSilence time.Duration // silence that ends the user's turn (default 500 ms)
	BargeIn    time.Duration // speech that interrupts the agent (default 500 ms)
	NoBargeIn  bool
	// HalfDuplex raises the voice threshold while the agent speaks, so
	// laptop speakers do not make it interrupt itself (default 10 dB;
	// negative: not raised).
	HalfDuplex float64
	// EchoCancelled, when set, says whether the speaker's echo is taken
	// out of the microphone right now: the threshold is not raised then
	// (but for EchoResidue on its least level, in a silent room).
	// Asked each time the agent speaks: a canceller that fails brings the
	// raised threshold back.
	EchoCancelled func() bool

	// Watchdogs on the answers providers owe (owed.go): a final
	// transcript after the user's turn (default 3 s: the user waits in
	// silence), the LLM's first text (default 10 s, the reference SDK's
	// request timeout), TTS audio for text pushed (default 10 s).
	FinalizeWait time.Duration
	AnswerWait   time.Duration
	AudioWait    time.Duration

	// MaxUnrecoverable closes the session when one stage has more
	// unrecoverable errors than this (default 3; negative: none is
	// tolerated, the first closes it). A terminal error closes at once.
	MaxUnrecoverable int

	Fallback fallback.Options
	Events   *conversation.Emitter
	// Attempts numbers each request's attempts; the providers' retry
	// hook reports to it (Attempts.OnRetry). Nil: a session of its own,
	// which hears of no retries.
	Attempts *Attempts

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

// EchoResidue raises the least level that is voice (audio.DefaultVoiceMin,
// -55 dBFS) by this much while the agent speaks through the echo
// canceller: to -45 dBFS, under a quiet voice (audio.VoiceDetector.Residue).
const EchoResidue = 10.0

// Defaults of Options.
const (
	DefaultStartSpeech      = 200 * time.Millisecond
	DefaultEndSilence       = 500 * time.Millisecond
	DefaultBargeIn          = 500 * time.Millisecond
	DefaultHalfDuplex       = 10.0
	DefaultMaxUnrecoverable = 3
	DefaultFinalizeWait     = 3 * time.Second
	DefaultAnswerWait       = 10 * time.Second
	DefaultAudioWait        = 10 * time.Second
	DefaultMicRetryFor      = 30 * time.Second
	DefaultSystemPrompt     = "You are a helpful voice assistant. Answer in one to three short sentences."
	// closeWait bounds the teardown of providers.
	closeWait = 3 * time.Second
)

func (o *Options) defaults() {
	if o.StartSpeech <= 0 {
		o.StartSpeech = DefaultStartSpeech
	}
	if o.PreRoll <= 0 {
		o.PreRoll = o.StartSpeech + 300*time.Millisecond
	}
	if o.EndSilence <= 0 {
		o.EndSilence = DefaultEndSilence
	}
	if o.BargeIn <= 0 {
		o.BargeIn = DefaultBargeIn
	}
	if o.FinalizeWait <= 0 {
		o.FinalizeWait = DefaultFinalizeWait
	}
	if o.AnswerWait <= 0 {
		o.AnswerWait = DefaultAnswerWait
	}
	if o.AudioWait <= 0 {
		o.AudioWait = DefaultAudioWait
	}
	if o.MicRetryFor <= 0 {
		o.MicRetryFor = DefaultMicRetryFor
	}
	switch {
	case o.HalfDuplex == 0:
		o.HalfDuplex = DefaultHalfDuplex
	case o.HalfDuplex < 0:
		o.HalfDuplex = 0
	}
	switch {
	case o.MaxUnrecoverable == 0:
		o.MaxUnrecoverable = DefaultMaxUnrecoverable
	case o.MaxUnrecoverable < 0:
		o.MaxUnrecoverable = 0
	}
	if o.HistoryTurns <= 0 {
		o.HistoryTurns = DefaultHistoryTurns
	}
	if o.HistoryChars <= 0 {
		o.HistoryChars = DefaultHistoryChars
	}
	if o.SystemPrompt == "" {
		o.SystemPrompt = DefaultSystemPrompt
	}
	if o.Attempts == nil {
		o.Attempts = NewAttempts(o.Events)
	}
}

// Session is one local conversation; Run drives it. It implements
// conversation.Conversation.
type Session struct {
	o        Options
	fallback *conversation.FallbackPlayer
	muted    atomic.Bool
	typed    chan string // Say's turns, for the loop
}

var _ conversation.Conversation = (*Session)(nil)

// New checks the options.
func New(o Options) (*Session, error) {
	if o.LLM == nil || o.STT == nil || o.TTS == nil || o.Mic == nil || o.Speaker == nil || o.Events == nil {
		return nil, errors.New("session: LLM, STT, TTS, Mic, Speaker and Events are required")
	}
	o.defaults()
	if f := o.Mic.Format(); f != audio.Pipeline {
		return nil, errors.New("session: the microphone must deliver 16 kHz mono")
	}
	if o.Speaker.Format().Channels != 1 {
		return nil, errors.New("session: the speaker must be mono")
	}
	s := &Session{o: o, typed: make(chan string, 4)}
	fallback.Preload(o.Fallback)
	s.fallback = &conversation.FallbackPlayer{Speaker: o.Speaker, Options: o.Fallback, Events: o.Events,
		Speak: func(ctx context.Context, text string) error { return speak(ctx, o.TTS, o.Speaker, text) }}
	return s, nil
}

// SetMuted mutes the microphone: silence goes on to STT, so the stream
// stays open, and no speech is detected.
func (s *Session) SetMuted(m bool) { s.muted.Store(m) }

// Muted reports SetMuted's state.
func (s *Session) Muted() bool { return s.muted.Load() }

// Say makes text the user's next turn, without STT (text mode: usable
// when STT is the exhausted stage). It is dropped when the session is not
// running or busy taking other typed turns.
func (s *Session) Say(text string) {
	select {
	case s.typed <- text:
	default:
	}
}

// ReplayFallback plays the fallback clip again (the one the last close
// chose, else the quota clip) straight to the speaker, for manual QA; it
// works after the session has closed too. Its fallback event has reason
// "replay".
func (s *Session) ReplayFallback() { s.fallback.Replay() }

// Wait waits for replays still playing.
func (s *Session) Wait() { s.fallback.Wait() }

// Run holds the conversation until ctx ends (close reason "user"), the
// microphone's input ends and the last reply has played ("input_ended"),
// or an error closes it ("error": the fallback plays first). It returns
// the error that closed the session, or nil.
func (s *Session) Run(ctx context.Context) error {
	return newRun(s).loop(ctx)
}
