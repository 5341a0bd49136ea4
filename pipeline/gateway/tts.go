package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// MaxSocketAge is how long a TTS socket is reused, as in the reference SDK.
const MaxSocketAge = 300 * time.Second

// TTS speaks over the gateway's /tts WebSocket. One socket serves many
// utterances in turn; idle sockets wait in a pool.
type TTS struct {
	cfg    Config
	create []byte // session.create, the same for every socket

	mu     sync.Mutex
	idle   []*ttsConn
	closed bool
}

type ttsConn struct {
	ws   *websocket.Conn
	born time.Time
}

// NewTTS checks cfg and returns the gateway's TTS.
func NewTTS(cfg Config) (*TTS, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	create, err := json.Marshal(ttsSessionCreate{
		Type: "session.create", SampleRate: strconv.Itoa(cfg.TTSRate), Encoding: "pcm_s16le",
		Voice: cfg.Voice, Model: cfg.TTSModel, Language: cfg.Language,
	})
	if err != nil {
		return nil, err
	}
	return &TTS{cfg: cfg, create: create}, nil
}

// SampleRate is the rate of the PCM Recv returns.
func (t *TTS) SampleRate() int { return t.cfg.TTSRate }

// Close closes the idle sockets; utterances in progress finish on theirs.
func (t *TTS) Close() error {
	t.mu.Lock()
	idle := t.idle
	t.idle, t.closed = nil, true
	t.mu.Unlock()
	for _, c := range idle {
		c.ws.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

// take returns a pooled socket young enough, or nil.
func (t *TTS) take() *ttsConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.idle) > 0 {
		c := t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if time.Since(c.born) < MaxSocketAge {
			return c
		}
		c.ws.CloseNow()
	}
	return nil
}

func (t *TTS) put(c *ttsConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed || time.Since(c.born) >= MaxSocketAge {
		c.ws.CloseNow()
		return
	}
	t.idle = append(t.idle, c)
}

// connect dials a new socket and opens its session (one attempt).
func (t *TTS) connect(ctx context.Context) (*ttsConn, error) {
	ws, err := t.cfg.dial(ctx, provider.StageTTS, "/tts", t.cfg.TTSModel)
	if err != nil {
		return nil, err
	}
	if err := write(ctx, ws, t.create, t.cfg.Retry.AttemptTimeout(), provider.StageTTS); err != nil {
		ws.CloseNow()
		return nil, err
	}
	return &ttsConn{ws: ws, born: time.Now()}, nil
}

// Synthesize starts an utterance on a pooled socket or a new one (whose
// refusals are retried per cfg.Retry).
func (t *TTS) Synthesize(ctx context.Context) (_ provider.Utterance, err error) {
	defer t.cfg.redact.Scrub(&err)
	c := t.take()
	if c == nil {
		err := t.cfg.Retry.Do(ctx, func(ctx context.Context) error {
			var err error
			c, err = t.connect(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	u := &utterance{t: t, started: make(chan struct{}), timeout: t.cfg.Retry.AttemptTimeout()}
	u.ctx, u.cancel = context.WithCancelCause(ctx)
	u.bind(c)
	return u, nil
}

// utterance is one reply. Until its first audio arrives, everything sent
// is kept, so that a socket that fails (a pooled one the gateway dropped,
// an error message, a stall) is replaced and the text replayed, within
// cfg.Retry. After audio, failures are final.
//
// Locks: wmu orders writes, replays and reconnects; mu guards the state
// and is never held across network I/O. Close takes neither before it
// cancels ctx, so it never waits for a write, a dial or a retry pause.
type utterance struct {
	t       *TTS
	ctx     context.Context // the utterance's own; Close cancels it
	cancel  context.CancelCauseFunc
	timeout time.Duration

	started   chan struct{} // closed by the first Push or Flush, or Close
	startOnce sync.Once
	closeOnce sync.Once
	pcm       []int16 // Recv's buffer

	wmu sync.Mutex

	mu         sync.Mutex
	conn       *ttsConn
	gen        int                     // counts sockets; a stale reader or timer sees it changed
	cctx       context.Context         // reads on conn; cancelled by its idle timer
	ccancel    context.CancelCauseFunc // with errIdle, errReplaced or on finish
	timer      *time.Timer             // conn's idle timer
	texts      []string
	flushed    bool
	unanswered bool // text was pushed and no audio has come since
	heard      bool // audio was delivered
	done       bool
	closed     bool
	err        error // what ended the utterance
	retries    int
}

var (
	errReplaced        = errors.New("socket replaced")
	errUtteranceClosed = errors.New("tts: utterance closed")
)

// bind makes c the utterance's socket, with its own read context and idle
// timer: a timer of an old socket can only cancel that socket. Caller
// holds mu.
func (u *utterance) bind(c *ttsConn) {
	if u.timer != nil {
		u.timer.Stop()
		u.ccancel(errReplaced)
	}
	u.gen++
	u.conn = c
	cctx, cancel := context.WithCancelCause(u.ctx)
	u.cctx, u.ccancel = cctx, cancel
	u.timer = time.AfterFunc(u.timeout, func() { cancel(errIdle) })
	u.arm()
}

// arm runs the idle timer only while audio is surely owed: text was pushed
// and nothing answered it yet, or the utterance is flushed and "done" has
// not come. A pause of the LLM between sentences is not a stall. Caller
// holds mu.
func (u *utterance) arm() {
	if !u.done && (u.unanswered || u.flushed) {
		u.timer.Reset(u.timeout)
	} else {
		u.timer.Stop()
	}
}

// failure is why the utterance cannot continue, or nil. Caller holds mu.
func (u *utterance) failure() error {
	switch {
	case u.err != nil:
		return u.err
	case u.closed:
		return errUtteranceClosed
	case u.ctx.Err() != nil && !u.done:
		return context.Cause(u.ctx)
	case u.done:
		return errors.New("tts: utterance already finished")
	}
	return nil
}

// ttsSessionCreate opens a TTS session (GATEWAY_PROTOCOL.md). The
// gateway's message shapes have no Go package of their own (agents-js
// defines them in its inference/api_protos), so they are tagged structs
// here, checked byte for byte by the wire conformance tests.
type ttsSessionCreate struct {
	Type       string `json:"type"`
	SampleRate string `json:"sample_rate"` // a string on this protocol
	Encoding   string `json:"encoding"`
	Voice      string `json:"voice,omitempty"`
	Model      string `json:"model,omitempty"`
	Language   string `json:"language,omitempty"`
}

type inputTranscript struct {
	Type       string `json:"type"`
	Transcript string `json:"transcript"`
}

func transcriptMessage(text string) []byte {
	msg, _ := json.Marshal(inputTranscript{Type: "input_transcript", Transcript: text + " "})
	return msg
}

var flushMessage = []byte(`{"type":"session.flush"}`)

// Push sends a sentence; a trailing space separates it from the next.
func (u *utterance) Push(text string) (err error) {
	defer u.t.cfg.redact.Scrub(&err)
	return u.send(transcriptMessage(text), func() { u.texts = append(u.texts, text); u.unanswered = true })
}

// Flush sends session.flush: the gateway speaks what it holds, then done.
func (u *utterance) Flush() (err error) {
	defer u.t.cfg.redact.Scrub(&err)
	return u.send(flushMessage, func() { u.flushed = true })
}

func (u *utterance) send(msg []byte, record func()) error {
	u.wmu.Lock()
	defer u.wmu.Unlock()
	u.mu.Lock()
	if err := u.failure(); err != nil {
		u.mu.Unlock()
		return err
	}
	record() // a replacement socket gets it by replay
	u.arm()
	c, gen := u.conn, u.gen
	u.mu.Unlock()
	u.startOnce.Do(func() { close(u.started) })
	if err := write(u.ctx, c.ws, msg, u.timeout, provider.StageTTS); err != nil {
		return u.recover(gen, err)
	}
	return nil
}

// recover replaces socket number gen after cause, before any audio was
// heard, replaying the session; otherwise it records cause as the end of
// the utterance and returns it. Caller holds wmu.
func (u *utterance) recover(gen int, cause error) error {
	retry := u.t.cfg.Retry
	for {
		u.mu.Lock()
		if u.gen != gen && u.err == nil { // already replaced
			u.mu.Unlock()
			return nil
		}
		if u.closed || u.ctx.Err() != nil {
			u.mu.Unlock()
			return context.Cause(u.ctx)
		}
		if u.err == nil && (u.heard || !provider.Retryable(cause) || u.retries >= retry.Retries()) {
			u.err = cause
			u.timer.Stop()
			u.ccancel(cause)
			u.conn.ws.CloseNow()
		}
		if u.err != nil {
			u.mu.Unlock()
			return u.err
		}
		u.retries++
		n, old := u.retries, u.conn
		texts, flushed := slices.Clone(u.texts), u.flushed
		u.mu.Unlock()

		old.ws.CloseNow()
		wait := retry.Wait(n, cause)
		if retry.OnRetry != nil {
			retry.OnRetry(n, cause, wait)
		}
		if err := sleep(u.ctx, wait); err != nil {
			return err
		}
		c, err := u.t.connect(u.ctx)
		if err == nil {
			if err = replay(u.ctx, c, texts, flushed, u.timeout); err != nil {
				c.ws.CloseNow()
			}
		}
		if err != nil {
			cause = err
			continue
		}
		u.mu.Lock()
		if u.closed {
			u.mu.Unlock()
			c.ws.CloseNow()
			return errUtteranceClosed
		}
		u.bind(c)
		u.mu.Unlock()
		return nil
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// replay sends everything a failed socket was given.
func replay(ctx context.Context, c *ttsConn, texts []string, flushed bool, timeout time.Duration) error {
	for _, text := range texts {
		if err := write(ctx, c.ws, transcriptMessage(text), timeout, provider.StageTTS); err != nil {
			return err
		}
	}
	if flushed {
		return write(ctx, c.ws, flushMessage, timeout, provider.StageTTS)
	}
	return nil
}

// Recv returns the next audio frame; io.EOF after "done".
func (u *utterance) Recv() (_ []int16, err error) {
	defer u.t.cfg.redact.Scrub(&err)
	select {
	case <-u.started:
	case <-u.ctx.Done():
	}
	for {
		u.mu.Lock()
		if u.done {
			u.mu.Unlock()
			return nil, io.EOF
		}
		if err := u.failure(); err != nil {
			u.mu.Unlock()
			return nil, err
		}
		c, cctx, gen := u.conn, u.cctx, u.gen
		u.mu.Unlock()

		_, data, err := c.ws.Read(cctx)
		var kind ttsKind
		if err == nil {
			kind, u.pcm, err = DecodeTTS(data, u.pcm[:0])
		} else {
			err = readError(cctx, provider.StageTTS, "read", err, u.timeout)
		}
		if err == nil {
			u.mu.Lock()
			switch kind {
			case ttsAudio:
				if len(u.pcm) > 0 {
					u.heard, u.unanswered = true, false
					if !u.done {
						u.arm() // only audio buys more time: keepalives and unknown messages do not
					}
				}
			case ttsDone:
				u.finish()
			}
			u.mu.Unlock()
			switch {
			case kind == ttsDone:
				return nil, io.EOF
			case kind == ttsAudio && len(u.pcm) > 0:
				return u.pcm, nil
			}
			continue
		}
		u.wmu.Lock()
		err = u.recover(gen, err)
		u.wmu.Unlock()
		if err != nil {
			return nil, err
		}
	}
}

// finish hands the socket back to the pool: it served its utterance.
// Caller holds mu.
func (u *utterance) finish() {
	u.done = true
	u.timer.Stop()
	u.ccancel(nil)
	u.cancel(nil) // nothing more to read; releases the contexts
	u.t.put(u.conn)
}

// Close ends the utterance. An unfinished one's socket is closed, not
// pooled: its audio may still be in flight.
func (u *utterance) Close() error {
	u.closeOnce.Do(func() {
		u.cancel(errUtteranceClosed) // first: aborts writes, dials and pauses at once
		u.startOnce.Do(func() { close(u.started) })
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.done {
			return
		}
		u.closed = true
		u.timer.Stop()
		u.conn.ws.CloseNow()
	})
	return nil
}

type ttsKind int

const (
	ttsOther ttsKind = iota
	ttsAudio
	ttsDone
)

// DecodeTTS reads one gateway TTS message by exact field name, appending
// its audio to dst. An "error" message becomes a typed error; a malformed
// one (bad JSON, bad base64, an odd byte count) a ProtocolError.
func DecodeTTS(data []byte, dst []int16) (ttsKind, []int16, error) {
	m, err := wire.Decode(data)
	if err != nil {
		return ttsOther, dst, provider.Malformed(provider.StageTTS, "TTS message", data)
	}
	typ, ok := m.String("type")
	if !ok && m.Has("type") {
		return ttsOther, dst, provider.Malformed(provider.StageTTS, "TTS message type", data)
	}
	switch typ {
	case "output_audio":
		s, ok := m.String("audio")
		if !ok {
			return ttsOther, dst, provider.Malformed(provider.StageTTS, "output_audio without audio", data)
		}
		pcm, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(pcm)%2 != 0 {
			return ttsOther, dst, provider.Malformed(provider.StageTTS, "output_audio is not 16-bit PCM in base64", data)
		}
		for i := 0; i+1 < len(pcm); i += 2 {
			dst = append(dst, int16(binary.LittleEndian.Uint16(pcm[i:])))
		}
		return ttsAudio, dst, nil
	case "done":
		return ttsDone, dst, nil
	case "error", "inference_quota_exceeded":
		return ttsOther, dst, provider.FromStreamMessage(provider.StageTTS, data)
	case "session.closed":
		return ttsOther, dst, &provider.ConnectionError{Stage: provider.StageTTS, Op: "read", Err: errors.New("the gateway closed the session")}
	}
	return ttsOther, dst, nil // session.created, output_alignment, unknown
}
