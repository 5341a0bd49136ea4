package conversation

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// The event stream is a public interface (docs/failures-and-events.md, "Events"): every
// JSON line is {"t_ms": <ms since start>, "type": "..."} plus the fields
// of its payload below. Keep it stable.

// State: the agent is initializing, listening, thinking or speaking; the
// user speaking or listening.
type State struct {
	Agent string `json:"agent"`
	User  string `json:"user"`
}

// Transcript is what the user said: interim (final false) or final.
type Transcript struct {
	Text  string `json:"text"`
	Final bool   `json:"final"`
}

// AgentText is the reply: each sentence as it goes to TTS (final false),
// then the whole reply (final true); a reply cut short by barge-in ends
// with what was said of it and interrupted true.
type AgentText struct {
	Text        string `json:"text"`
	Final       bool   `json:"final"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// Error is a failure: every failed attempt of a provider, retried or not,
// and what a conversation notices itself (a remote agent gone silent).
type Error struct {
	Stage     string     `json:"stage"` // stt, llm, tts, device, agent, room ("" when unknown)
	Message   string     `json:"message"`
	Status    int        `json:"status"` // HTTP status; 0 when none
	Retryable bool       `json:"retryable"`
	Terminal  bool       `json:"terminal"`
	Attempt   int        `json:"attempt"`
	Quota     *QuotaInfo `json:"quota"`
	RetryInMs int64      `json:"retry_in_ms,omitempty"` // when it will be retried
	Hint      string     `json:"hint,omitempty"`        // what the user can do, when the error is not a quota's
}

// Described is an error that says how it appears in an event: an error
// of a conversation itself rather than of a provider (a room, an agent).
type Described interface {
	error
	Describe() Error
}

// QuotaInfo is the gateway's quota body, sanitized.
// A field the gateway's body did not carry is absent, never "".
type QuotaInfo struct {
	Type           string `json:"type,omitempty"`
	Category       string `json:"category,omitempty"`
	Hint           string `json:"hint,omitempty"`
	RemainingLimit string `json:"remaining_limit,omitempty"`
}

// Fallback is what the user heard when the session ended on an error,
// emitted once it has played (or failed to).
type Fallback struct {
	Clip   string `json:"clip,omitempty"`  // the bundled clip played
	Text   string `json:"text,omitempty"`  // or the message spoken through TTS
	Reason string `json:"reason"`          // quota_exhausted, credentials, unavailable
	OK     bool   `json:"ok"`              // it reached the speaker
	Error  string `json:"error,omitempty"` // why not
}

// Metrics are one turn's latencies (ms): end of speech -> finalize sent,
// finalize -> final transcript, LLM request -> first token, first sentence
// to TTS -> first audio, end of speech -> first audio at the speaker.
type Metrics struct {
	Turn      int   `json:"turn"`
	EOUMs     int64 `json:"eou_ms"`
	STTMs     int64 `json:"stt_ms"`
	LLMTTFTMs int64 `json:"llm_ttft_ms"`
	TTSTTFBMs int64 `json:"tts_ttfb_ms"`
	E2EMs     int64 `json:"e2e_ms"`
}

// Device is something that stopped or came back while the conversation
// goes on: the microphone (reopened), a room's connection (restored).
type Device struct {
	Device  string `json:"device"` // "microphone", "room connection"
	Stage   string `json:"stage"`  // the errors it ends when back: "device", "room"
	OK      bool   `json:"ok"`     // it works (again)
	Message string `json:"message"`
}

// Tool is a tool the agent ran (console mode: function_tools_executed),
// for the transcript: its name, its arguments (cut short), and whether it
// answered or failed.
type Tool struct {
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	OK        bool   `json:"ok"`
	Output    string `json:"output"` // what it answered (cut short), or its error
}

// Usage is what the agent's models have used so far in the session
// (console mode: session_usage_updated), summed over models.
type Usage struct {
	LLMInputTokens  int     `json:"llm_input_tokens"`
	LLMOutputTokens int     `json:"llm_output_tokens"`
	TTSCharacters   int     `json:"tts_characters"`
	STTAudioSeconds float64 `json:"stt_audio_s"`
}

// Close ends the stream: reason error, user or input_ended.
type Close struct {
	Reason string `json:"reason"`
	Error  *Error `json:"error"`
}

// Event is one entry of the stream.
type Event struct {
	T       time.Duration // since the session started
	Payload any           // one of the types above
}

// Type is the event's "type".
func (e Event) Type() string {
	switch e.Payload.(type) {
	case State:
		return "state"
	case Transcript:
		return "transcript"
	case AgentText:
		return "agent_text"
	case Error:
		return "error"
	case Fallback:
		return "fallback"
	case Metrics:
		return "metrics"
	case Device:
		return "device"
	case Close:
		return "close"
	case Dropped:
		return "dropped"
	case Tool:
		return "tool"
	case Usage:
		return "usage"
	}
	return "unknown"
}

// MarshalJSON writes t_ms and type first, then the payload's fields.
func (e Event) MarshalJSON() ([]byte, error) {
	body, err := json.Marshal(e.Payload)
	if err != nil {
		return nil, err
	}
	head := fmt.Sprintf(`{"t_ms":%d,"type":%q`, e.T.Milliseconds(), e.Type())
	if len(body) <= 2 {
		return []byte(head + "}"), nil
	}
	return append([]byte(head+","), body[1:]...), nil
}

// Emitter stamps events with the time since start and hands them, one at
// a time and in order, to a consumer (the JSON writer, the UI).
type Emitter struct {
	start time.Time
	mu    sync.Mutex
	out   func(Event)

	// Queued emitters only: a consumer that stalls (a --headless reader
	// that stops reading) must not stall the conversation's loop and so
	// its audio. Events wait in queue; when it is full they are dropped
	// and counted, and a Dropped event says how many once there is room.
	queue   chan Event
	dropped int
	drained chan struct{}
	closed  bool
}

// Dropped says that Count events were lost because their consumer fell
// behind (only ever emitted by a queued emitter).
type Dropped struct {
	Count int `json:"count"`
}

// NewEmitter starts the clock now; Emit calls out before it returns (what
// tests want).
func NewEmitter(out func(Event)) *Emitter {
	return &Emitter{start: time.Now(), out: out}
}

// NewQueuedEmitter starts the clock now; out is called from a goroutine of
// the emitter's, with at most size events waiting. Close it to deliver the
// rest.
func NewQueuedEmitter(out func(Event), size int) *Emitter {
	e := &Emitter{start: time.Now(), out: out, queue: make(chan Event, size), drained: make(chan struct{})}
	go func() {
		defer close(e.drained)
		for ev := range e.queue {
			out(ev)
		}
	}()
	return e
}

// Emit sends payload, or for a queued emitter queues it (never waiting).
func (e *Emitter) Emit(payload any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ev := Event{T: time.Since(e.start), Payload: payload}
	if e.queue == nil {
		e.out(ev)
		return
	}
	if e.closed {
		return
	}
	if e.dropped > 0 && !e.offer(Event{T: ev.T, Payload: Dropped{Count: e.dropped}}) {
		e.dropped++
		return
	}
	e.dropped = 0
	if !e.offer(ev) {
		e.dropped++
	}
}

func (e *Emitter) offer(ev Event) bool {
	select {
	case e.queue <- ev:
		return true
	default:
		return false
	}
}

// Close delivers what a queued emitter still holds (and a Dropped event
// if the last ones were lost), waiting at most wait for its consumer; a
// later Emit is ignored. For a plain emitter it does nothing.
func (e *Emitter) Close(wait time.Duration) {
	e.mu.Lock()
	if e.queue == nil || e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	if e.dropped > 0 {
		select {
		case e.queue <- Event{T: time.Since(e.start), Payload: Dropped{Count: e.dropped}}:
		case <-time.After(wait):
		}
	}
	close(e.queue)
	e.mu.Unlock()
	select {
	case <-e.drained:
	case <-time.After(wait):
	}
}

// ErrorInfo describes err for an error or close event. Untrusted text
// in it is sanitized by the error model.
func ErrorInfo(err error, attempt int) *Error {
	if err == nil {
		return nil
	}
	var dev *audio.DeviceError
	if errors.As(err, &dev) {
		// A speaker that fails ends the session (nobody would hear the
		// rest); a microphone is reopened.
		what, hint := "microphone", "check the microphone (is it plugged in, not muted?); `voicetui devices` lists them, --input-device picks one; typing (ctrl+t) still works"
		if dev.Direction == "output" {
			what, hint = "speaker", "check the speaker or headphones; `voicetui devices` lists them, --output-device picks one"
		}
		return &Error{Stage: "device", Message: safetext.Sanitize(what+": "+err.Error(), 500), Terminal: dev.Direction == "output",
			Attempt: attempt, Hint: hint}
	}
	var d Described
	if errors.As(err, &d) {
		e := d.Describe()
		e.Message = safetext.Sanitize(e.Message, 500)
		e.Hint = safetext.Sanitize(e.Hint, 300)
		e.Attempt = attempt
		return &e
	}
	e := &Error{Message: safetext.Sanitize(err.Error(), 500), Attempt: attempt,
		Retryable: provider.Retryable(err), Terminal: provider.Terminal(err)}
	var c provider.Classified
	if errors.As(err, &c) && c.ErrStage() != provider.StageUnknown {
		e.Stage = c.ErrStage().String()
	}
	if se, ok := provider.AsStatus(err); ok {
		e.Status = se.StatusCode
	}
	if q, ok := provider.AsQuota(err); ok {
		e.Quota = &QuotaInfo{Type: q.QuotaType, Category: q.Category, Hint: q.Hint, RemainingLimit: q.RemainingLimit}
	}
	return e
}
