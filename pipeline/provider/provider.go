package provider

import (
	"context"
	"time"
)

// The interfaces the voice session uses to reach a provider. The gateway
// package implements them over the LiveKit Inference protocol, the openai
// package over OpenAI-compatible HTTP. Every error they return is a
// Classified error of this package, or the caller's context error.

// Message is one turn of the conversation sent to the LLM. It is not a
// wire type: each client writes it in its protocol's own shape (openai-go's
// request types), so it has no JSON names of its own.
type Message struct {
	Role    string // "system", "user" or "assistant"
	Content string
}

// LLM streams a reply to a conversation.
type LLM interface {
	Chat(ctx context.Context, messages []Message) (TextStream, error)
}

// TextStream yields a reply piece by piece:
//
//	for s.Next() { show(s.Current()) }
//	if err := s.Err(); err != nil { ... }
//
// Close releases the connection; it is safe to call at any time, twice.
type TextStream interface {
	Next() bool
	Current() string
	Err() error
	Close() error
}

// STT transcribes audio in the audio.Pipeline format (16 kHz mono).
type STT interface {
	Stream(ctx context.Context) (STTStream, error)
}

// TurnAudio is implemented by an STT that transcribes whole turns, one
// request per Finalize and billed for every second it is sent, rather than
// a stream that listens: a caller sends it only the user's turns (from a
// short pre-roll before the speech to the end of the turn), never silence
// or the agent's own playback.
type TurnAudio interface {
	TurnAudioOnly() bool
}

// STTStream is one transcription session. Write and Finalize may be
// called while another goroutine waits in Recv.
type STTStream interface {
	// Write sends audio; it is buffered into the provider's chunk size.
	Write(samples []int16) error
	// Finalize asks for the final transcript of the audio written so far
	// (end of the user's turn).
	Finalize() error
	// Recv returns the next event; io.EOF once the stream is closed.
	Recv() (STTEvent, error)
	Close() error
}

// STTEventType tells what an STTEvent reports.
type STTEventType int

const (
	SpeechStarted STTEventType = iota + 1
	InterimTranscript
	PreflightTranscript // stable enough to start the LLM early
	FinalTranscript
	Finalized // every transcript for the audio before Finalize was sent
)

func (t STTEventType) String() string {
	switch t {
	case SpeechStarted:
		return "start_of_speech"
	case InterimTranscript:
		return "interim_transcript"
	case PreflightTranscript:
		return "preflight_transcript"
	case FinalTranscript:
		return "final_transcript"
	case Finalized:
		return "session.finalized"
	}
	return "unknown"
}

// STTEvent is a transcript or a speech boundary. Text is sanitized.
type STTEvent struct {
	Type       STTEventType
	Text       string
	Language   string
	Confidence float64
	Start      time.Duration // offset in the stream's audio, when given
	Duration   time.Duration
}

// TTS turns text into speech at SampleRate (mono).
type TTS interface {
	SampleRate() int
	// Synthesize starts an utterance; text is pushed as it arrives.
	Synthesize(ctx context.Context) (Utterance, error)
	Close() error
}

// Utterance is one reply being spoken. Push and Flush may be called while
// another goroutine waits in Recv.
type Utterance interface {
	// Push adds a sentence or clause.
	Push(text string) error
	// Flush says no more text will come.
	Flush() error
	// Recv returns the next audio in order; io.EOF once the utterance has
	// been spoken completely. The slice is valid until the next call.
	Recv() ([]int16, error)
	// Close ends the utterance, finished or not (barge-in).
	Close() error
}
