// Package room is a conversation with a LiveKit agent in a room, over
// WebRTC (server-sdk-go on pion/webrtc): the microphone is published as
// an Opus track, the agent's audio plays on the speaker, its state
// (lk.agent.state) and transcripts (lk.transcription) become the same
// events as the local pipeline's, typed turns go to it on lk.chat. It is
// a conversation.Conversation, so the interface, --headless and --record
// drive it unchanged.
//
// An agent that fails goes quiet rather than saying so, so a watchdog
// (pipeline/agentwatch, shared with console mode) listens for the
// silence; every sign of it gives an error event with a hint, and a sound
// played locally as soon as it is known, never depending on the agent's
// audio (conversation.FallbackPlayer): the earcon for a failure the
// conversation survives, the clip when the agent gave up or it cannot go on.
//
// Files: room.go (options, controls), connect.go (joining, the SDK's
// callbacks turned into messages), loop.go (the loop that owns the
// state), media.go (the microphone track and the agent's audio).
package room

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/go-logr/logr"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
)

// Options configure a room conversation. Zero values are the defaults, a
// negative MaxUnrecoverable tolerates no failure.
type Options struct {
	URL string // ws(s):// of the LiveKit server
	// Token joins the room; without it one is minted from APIKey and
	// APISecret (a room grant for Room, Identity and, with AgentName, an
	// explicit dispatch of that agent).
	Token             string
	APIKey, APISecret string
	Room              string
	Identity          string
	AgentName         string

	Mic audio.Source // audio.Pipeline format
	// HoldInput: Mic is a recording (--input), not a person; it starts
	// once the agent listens (silence is published until then).
	HoldInput bool
	Speaker   audio.Sink // mono, any rate

	Events   *conversation.Emitter
	Fallback fallback.Options

	AgentWait     time.Duration // for an agent to join (default 20 s)
	AnswerWait    time.Duration // for an answer after the user's turn (default 12 s)
	ReconnectWait time.Duration // for a lost connection to return (default 7 s)
	// MaxUnrecoverable ends the conversation when the agent fails more
	// times in a row than this (default 3; negative: at the first).
	MaxUnrecoverable int

	InputLevel  func(audio.Levels)
	OutputLevel func(float64)
	// Trace, when set, hears the instants the benchmarks measure:
	// speech_end, first_agent_audio, alarm:REASON (agentwatch's Kind
	// reasons: agent_error, connection_lost, ...), fallback_start.
	Trace func(mark string, at time.Time)
}

// Defaults of Options.
const (
	DefaultAgentWait  = 20 * time.Second
	DefaultAnswerWait = 12 * time.Second
	// DefaultReconnectWait keeps the whole close after a lost server
	// under 12 s: this wait, then the clip (3.9 s) while the room is left.
	// The SDK retries at 0, 0.3, 1.5 and 4.2 s (its next is at 9 s), so 7 s
	// lets a server restarted within about 4 s be reached again.
	DefaultReconnectWait    = 7 * time.Second
	DefaultMaxUnrecoverable = 3
	// heardVoice is voice the user surely spoke (not a cough): the agent
	// owes a reaction to it. "What time is it?" is about 0.8 s of voice
	// (1 s missed it); a cough is under half a second.
	heardVoice = 700 * time.Millisecond
	// closeWait bounds leaving the room.
	closeWait = 3 * time.Second
)

func (o *Options) defaults() {
	if o.AgentWait <= 0 {
		o.AgentWait = DefaultAgentWait
	}
	if o.AnswerWait <= 0 {
		o.AnswerWait = DefaultAnswerWait
	}
	if o.ReconnectWait <= 0 {
		o.ReconnectWait = DefaultReconnectWait
	}
	switch {
	case o.MaxUnrecoverable == 0:
		o.MaxUnrecoverable = DefaultMaxUnrecoverable
	case o.MaxUnrecoverable < 0:
		o.MaxUnrecoverable = 0
	}
}

// Conversation is one stay in a room; Run drives it.
type Conversation struct {
	o                   Options
	conversation.Remote // mute, typed turns, the fallback player
}

var _ conversation.Conversation = (*Conversation)(nil)

// Validate checks where and how to join.
func (o Options) Validate() error {
	if o.URL == "" {
		return errors.New("room: no server URL (--url or LIVEKIT_URL)")
	}
	if !strings.HasPrefix(o.URL, "ws://") && !strings.HasPrefix(o.URL, "wss://") && !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return fmt.Errorf("room: server URL %q: want ws(s)://host:port", o.URL)
	}
	if o.Token == "" && (o.APIKey == "" || o.APISecret == "") {
		return errors.New("room: no credentials: --token, or LIVEKIT_API_KEY and LIVEKIT_API_SECRET")
	}
	if o.Room == "" || o.Identity == "" {
		return errors.New("room: a room name and an identity are required")
	}
	return nil
}

// New checks the options; nothing connects before Run.
func New(o Options) (*Conversation, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Mic == nil || o.Speaker == nil || o.Events == nil {
		return nil, errors.New("room: Mic, Speaker and Events are required")
	}
	if o.Mic.Format() != audio.Pipeline {
		return nil, errors.New("room: the microphone must deliver 16 kHz mono")
	}
	if o.Speaker.Format().Channels != 1 {
		return nil, errors.New("room: the speaker must be mono")
	}
	o.defaults()
	c := &Conversation{o: o, Remote: conversation.NewRemote(o.Speaker, o.Fallback, o.Events)}
	return c, nil
}

// Run joins the room and holds the conversation until ctx ends ("user"),
// the microphone's input ended and the agent has answered the last turn
// ("input_ended"), or the agent or the room failed ("error", after the
// fallback). It returns the error that closed it, or nil.
func (c *Conversation) Run(ctx context.Context) error {
	return newRun(c).loop(ctx)
}

// Error is a failure of the room or of the agent in it, as noticed here.
type Error struct {
	Stage    string // "agent" or "room"
	Message  string
	Hint     string
	Terminal bool // the conversation cannot go on
	Err      error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Stage, e.Message, e.Err)
	}
	return e.Stage + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Describe implements conversation.Described: the stage has a field of
// its own there, so the message does not repeat it.
func (e *Error) Describe() conversation.Error {
	msg := e.Message
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return conversation.Error{Stage: e.Stage, Message: msg, Hint: e.Hint, Terminal: e.Terminal}
}

// SDKLog sends the log of the LiveKit SDK and of pion to h; nil discards
// it. The SDK keeps one logger for the whole process (that is its API),
// and by default writes to stderr, which the interface owns: call this
// once, before Run.
func SDKLog(h slog.Handler) {
	if h == nil {
		h = protologger.NewSlogDiscard()
	}
	lksdk.SetLogger(protologger.LogRLogger(logr.FromSlogHandler(h)))
}
