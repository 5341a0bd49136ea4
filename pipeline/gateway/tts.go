package gateway

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline"
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
	if err := cfg.check(); err != nil {
		return nil, err
	}
	create, err := json.Marshal(map[string]string{
		"type": "session.create", "sample_rate": strconv.Itoa(cfg.TTSRate), "encoding": "pcm_s16le",
		"voice": cfg.Voice, "model": cfg.TTSModel, "language": cfg.Language,
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
	ws, err := t.cfg.dial(ctx, pipeline.StageTTS, "/tts", t.cfg.TTSModel)
	if err != nil {
		return nil, err
	}
	if err := write(ctx, ws, t.create, t.cfg.Retry.AttemptTimeout(), pipeline.StageTTS); err != nil {
		ws.CloseNow()
		return nil, err
	}
	return &ttsConn{ws: ws, born: time.Now()}, nil
}

// Synthesize starts an utterance on a pooled socket or a new one (whose
// refusals are retried per cfg.Retry).
func (t *TTS) Synthesize(ctx context.Context) (pipeline.Utterance, error) {
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
	u := &utterance{t: t, ctx: ctx, started: make(chan struct{}), timeout: t.cfg.Retry.AttemptTimeout()}
	u.bind(c)
	u.timer = time.AfterFunc(time.Hour, u.idle)
	u.timer.Stop()
	return u, nil
}

// utterance is one reply. Until its first audio arrives, everything sent
// is kept so that a socket that turns out dead (a pooled one the gateway
// dropped, a refused or stalled connection) is replaced and the text
// replayed, up to cfg.Retry's retries. After audio, failures are final.
type utterance struct {
	t       *TTS
	ctx     context.Context
	timeout time.Duration
	timer   *time.Timer // idle: armed while audio is owed

	mu      sync.Mutex
	conn    *ttsConn
	cctx    context.Context // reads on conn; cancelled by idle or Close
	ccancel context.CancelCauseFunc
	texts   []string
	flushed bool
	heard   bool // audio delivered
	done    bool
	closed  bool
	retries int

	started   chan struct{} // closed by the first Push or Flush
	startOnce sync.Once
	pcm       []int16
	closeOnce sync.Once
}

var errReplaced = errors.New("socket replaced")

func (u *utterance) bind(c *ttsConn) {
	u.conn = c
	u.cctx, u.ccancel = context.WithCancelCause(u.ctx)
}

func (u *utterance) idle() {
	u.mu.Lock()
	cancel := u.ccancel
	u.mu.Unlock()
	cancel(errIdle)
}

type inputTranscript struct {
	Type       string `json:"type"`
	Transcript string `json:"transcript"`
}

// Push sends a sentence; a trailing space separates it from the next.
func (u *utterance) Push(text string) error {
	msg, err := json.Marshal(inputTranscript{Type: "input_transcript", Transcript: text + " "})
	if err != nil {
		return err
	}
	return u.send(msg, func() { u.texts = append(u.texts, text) })
}

// Flush sends session.flush: the gateway speaks what it holds, then done.
func (u *utterance) Flush() error {
	return u.send([]byte(`{"type":"session.flush"}`), func() { u.flushed = true })
}

func (u *utterance) send(msg []byte, record func()) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed || u.done {
		return errors.New("tts: utterance already finished")
	}
	record()
	u.startOnce.Do(func() { close(u.started) })
	u.timer.Reset(u.timeout)
	err := write(u.ctx, u.conn.ws, msg, u.timeout, pipeline.StageTTS)
	if err != nil {
		// The text is recorded: a new socket gets it by replay.
		err = u.reconnectLocked(err)
	}
	return err
}

// reconnectLocked replaces a failed socket before any audio was heard,
// replaying the session; it returns cause when that is not allowed.
func (u *utterance) reconnectLocked(cause error) error {
	retry := u.t.cfg.Retry
	for {
		if u.heard || u.ctx.Err() != nil || !pipeline.Retryable(cause) || u.retries >= retry.Retries() {
			return cause
		}
		u.retries++
		wait := retry.Wait(u.retries, cause)
		if retry.OnRetry != nil {
			retry.OnRetry(u.retries, cause, wait)
		}
		u.ccancel(errReplaced)
		u.conn.ws.CloseNow()
		select {
		case <-u.ctx.Done():
			return context.Cause(u.ctx)
		case <-time.After(wait):
		}
		c, err := u.t.connect(u.ctx)
		if err == nil {
			err = u.replay(c)
		}
		if err != nil {
			cause = err
			continue
		}
		u.bind(c)
		u.timer.Reset(u.timeout)
		return nil
	}
}

// replay sends everything the failed socket was given.
func (u *utterance) replay(c *ttsConn) error {
	for _, text := range u.texts {
		msg, _ := json.Marshal(inputTranscript{Type: "input_transcript", Transcript: text + " "})
		if err := write(u.ctx, c.ws, msg, u.timeout, pipeline.StageTTS); err != nil {
			c.ws.CloseNow()
			return err
		}
	}
	if u.flushed {
		if err := write(u.ctx, c.ws, []byte(`{"type":"session.flush"}`), u.timeout, pipeline.StageTTS); err != nil {
			c.ws.CloseNow()
			return err
		}
	}
	return nil
}

// Recv returns the next audio frame; io.EOF after "done".
func (u *utterance) Recv() ([]int16, error) {
	select {
	case <-u.started:
	case <-u.ctx.Done():
		return nil, context.Cause(u.ctx)
	}
	for {
		u.mu.Lock()
		if u.done {
			u.mu.Unlock()
			return nil, io.EOF
		}
		if u.closed {
			u.mu.Unlock()
			return nil, errors.New("tts: utterance closed")
		}
		c, cctx := u.conn, u.cctx
		u.mu.Unlock()

		_, data, err := c.ws.Read(cctx)
		if err == nil {
			var kind ttsKind
			kind, u.pcm, err = DecodeTTS(data, u.pcm[:0])
			if err == nil {
				switch kind {
				case ttsAudio:
					if len(u.pcm) == 0 {
						continue
					}
					u.mu.Lock()
					u.heard = true
					u.timer.Reset(u.timeout)
					u.mu.Unlock()
					return u.pcm, nil
				case ttsDone:
					u.finish()
					return nil, io.EOF
				default:
					u.timer.Reset(u.timeout)
					continue
				}
			}
		} else {
			err = readError(cctx, pipeline.StageTTS, "read", err, u.timeout)
		}
		u.mu.Lock()
		if u.conn != c { // Push already replaced the socket
			u.mu.Unlock()
			continue
		}
		if errors.Is(err, errReplaced) || u.closed {
			u.mu.Unlock()
			return nil, errors.New("tts: utterance closed")
		}
		err = u.reconnectLocked(err)
		u.mu.Unlock()
		if err != nil {
			u.Close()
			return nil, err
		}
	}
}

// finish hands the socket back to the pool: it served its utterance.
func (u *utterance) finish() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.timer.Stop()
	u.done = true
	u.t.put(u.conn)
}

// Close abandons an unfinished utterance (its socket may still carry its
// audio, so it is closed, not pooled).
func (u *utterance) Close() error {
	u.closeOnce.Do(func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		u.timer.Stop()
		u.startOnce.Do(func() { close(u.started) })
		if u.done {
			return
		}
		u.closed = true
		u.ccancel(errClosed)
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

type ttsMessage struct {
	Type  string `json:"type"`
	Audio any    `json:"audio"`
}

// DecodeTTS reads one gateway TTS message, appending its audio to dst.
// An "error" message becomes a typed error; a malformed one (bad JSON,
// bad base64, an odd byte count) a ProtocolError.
func DecodeTTS(data []byte, dst []int16) (ttsKind, []int16, error) {
	var m ttsMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return ttsOther, dst, pipeline.Malformed(pipeline.StageTTS, "TTS message", data)
	}
	switch m.Type {
	case "output_audio":
		s, ok := m.Audio.(string)
		if !ok {
			return ttsOther, dst, pipeline.Malformed(pipeline.StageTTS, "output_audio without audio", data)
		}
		pcm, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(pcm)%2 != 0 {
			return ttsOther, dst, pipeline.Malformed(pipeline.StageTTS, "output_audio is not 16-bit PCM in base64", data)
		}
		for i := 0; i+1 < len(pcm); i += 2 {
			dst = append(dst, int16(binary.LittleEndian.Uint16(pcm[i:])))
		}
		return ttsAudio, dst, nil
	case "done":
		return ttsDone, dst, nil
	case "error":
		return ttsOther, dst, pipeline.FromStreamMessage(pipeline.StageTTS, data)
	case "session.closed":
		return ttsOther, dst, &pipeline.ConnectionError{Stage: pipeline.StageTTS, Op: "read", Err: errors.New("the gateway closed the session")}
	}
	return ttsOther, dst, nil // session.created, output_alignment, unknown
}
