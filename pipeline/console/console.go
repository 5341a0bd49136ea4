// Package console is a conversation with a developer's own agent run
// locally in its framework's console mode, as `lk agent console` runs it:
// voicetui spawns the agent (`AGENT_COMMAND console --connect-addr
// 127.0.0.1:PORT`), the agent connects back over TCP, and voicetui is its
// microphone and speaker. The messages are the livekit/protocol
// AgentSessionMessage (github.com/livekit/protocol/livekit/agent), each
// framed by a 4-byte big-endian length; there is no server and no room.
//
// It is a conversation.Conversation, so the interface, --headless and
// --record drive it unchanged, and it is never silent the way room mode
// is not (the same watchdog, pipeline/agentwatch), and better informed:
// the agent's inference can go through voicetui's own gateway, whose
// refusals (Options.Refusals) are known here with their body on the first
// one, while the agent itself only reports a label and retries.
//
// Files: console.go (options, controls), agent.go (the agent's process),
// wire.go (framing), loop.go (the loop that owns the state), media.go
// (the microphone sent, the agent's audio played).
package console

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/localgw"
)

// Options configure a console conversation. Zero values are the defaults.
type Options struct {
	// Command is the agent's command line (see Command); the console
	// flags are appended to it.
	Command []string
	Dir     string   // where it runs ("": here)
	Env     []string // its environment (nil: this process's)
	// Log receives the agent's stdout and stderr (nil: only its last
	// lines are kept, for the hints); LogName says where it is.
	Log     io.Writer
	LogName string

	Mic audio.Source // audio.Pipeline format
	// HoldInput: Mic is a recording (--input), not a person; it starts
	// once the agent listens.
	HoldInput bool
	Speaker   audio.Sink // mono, any rate

	Events   *conversation.Emitter
	Fallback fallback.Options
	// Refusals are the quota refusals the agent's gateway answered (the
	// embedded gateway's localgw.Options.OnRefused), nil without one.
	Refusals <-chan localgw.Refused

	ConnectWait time.Duration // for the agent to connect after it starts (default 30 s)
	AnswerWait  time.Duration // for an answer after the user's turn (default 12 s)
	// MaxUnrecoverable ends the conversation when the agent fails more
	// times in a row than this (default 3; negative: at the first).
	MaxUnrecoverable int

	InputLevel  func(audio.Levels)
	OutputLevel func(float64)
	// Trace hears the instants the benchmarks measure: speech_end,
	// first_agent_audio, refused (a refusal reached the loop),
	// alarm:REASON, fallback_start.
	Trace func(mark string, at time.Time)
}

// Defaults of Options.
const (
	// DefaultConnectWait: agents-js with a Silero prewarm connects 1.2 to
	// 1.5 s after it starts; a busy 2-core machine and a cold npm cache
	// take several times that.
	DefaultConnectWait      = 30 * time.Second
	DefaultAnswerWait       = 12 * time.Second
	DefaultMaxUnrecoverable = 3
	heardVoice              = 700 * time.Millisecond // as in room mode: voice that surely was speech
)

func (o *Options) defaults() {
	if o.ConnectWait <= 0 {
		o.ConnectWait = DefaultConnectWait
	}
	if o.AnswerWait <= 0 {
		o.AnswerWait = DefaultAnswerWait
	}
	switch {
	case o.MaxUnrecoverable == 0:
		o.MaxUnrecoverable = DefaultMaxUnrecoverable
	case o.MaxUnrecoverable < 0:
		o.MaxUnrecoverable = 0
	}
}

// Conversation is one run of the agent; Run drives it.
type Conversation struct {
	o                   Options
	conversation.Remote                         // mute, typed turns, the fallback player
	agent               atomic.Pointer[process] // the running agent, for tests that kill it
}

var _ conversation.Conversation = (*Conversation)(nil)

// New checks the options; nothing starts before Run.
func New(o Options) (*Conversation, error) {
	if err := Check(o.Command, o.Dir); err != nil {
		return nil, err
	}
	if o.Mic == nil || o.Speaker == nil || o.Events == nil {
		return nil, errors.New("console: Mic, Speaker and Events are required")
	}
	if o.Mic.Format() != audio.Pipeline {
		return nil, errors.New("console: the microphone must deliver 16 kHz mono")
	}
	if o.Speaker.Format().Channels != 1 {
		return nil, errors.New("console: the speaker must be mono")
	}
	o.defaults()
	c := &Conversation{o: o, Remote: conversation.NewRemote(o.Speaker, o.Fallback, o.Events)}
	return c, nil
}

// Run starts the agent and holds the conversation until ctx ends
// ("user"), the microphone's input ended and the agent has answered the
// last turn ("input_ended"), or the agent failed ("error", after the
// fallback). The agent is stopped before it returns.
func (c *Conversation) Run(ctx context.Context) error {
	return newRun(c).loop(ctx)
}

// Error is a failure of the agent, as noticed here.
type Error struct {
	Stage    string // "agent"
	Message  string
	Hint     string
	Terminal bool
}

func (e *Error) Error() string { return e.Stage + ": " + e.Message }

// Describe implements conversation.Described.
func (e *Error) Describe() conversation.Error {
	return conversation.Error{Stage: e.Stage, Message: e.Message, Hint: e.Hint, Terminal: e.Terminal}
}

func agentError(format string, a ...any) *Error {
	return &Error{Stage: "agent", Message: fmt.Sprintf(format, a...), Terminal: true}
}
