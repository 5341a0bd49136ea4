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
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// ChunkSamples is one input_audio message: 50 ms at 16 kHz.
const ChunkSamples = audio.PipelineRate / 20

// STT transcribes over the gateway's /stt WebSocket, one socket per stream.
type STT struct {
	cfg Config
}

// TurnAudioOnly implements provider.TurnAudio: Config.TurnAudioOnly.
func (s *STT) TurnAudioOnly() bool { return s.cfg.TurnAudioOnly }

// NewSTT checks cfg and returns the gateway's STT.
func NewSTT(cfg Config) (*STT, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &STT{cfg: cfg}, nil
}

// sessionCreate opens an STT session (GATEWAY_PROTOCOL.md); see
// ttsSessionCreate for why it is a struct of our own.
type sessionCreate struct {
	Type     string `json:"type"`
	Model    string `json:"model,omitempty"`
	Settings struct {
		SampleRate string `json:"sample_rate"`
		Encoding   string `json:"encoding"`
		Language   string `json:"language,omitempty"`
	} `json:"settings"`
}

// Stream connects (retrying refusals that may pass, per cfg.Retry) and
// opens a session at 16 kHz pcm_s16le.
func (s *STT) Stream(ctx context.Context) (_ provider.STTStream, err error) {
	defer s.cfg.redact.Scrub(&err)
	create := sessionCreate{Type: "session.create", Model: s.cfg.STTModel}
	create.Settings.SampleRate = strconv.Itoa(audio.PipelineRate)
	create.Settings.Encoding = "pcm_s16le"
	create.Settings.Language = s.cfg.Language
	msg, err := json.Marshal(create)
	if err != nil {
		return nil, err
	}
	var conn *websocket.Conn
	err = s.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		c, err := s.cfg.dial(ctx, provider.StageSTT, "/stt", s.cfg.STTModel)
		if err != nil {
			return err
		}
		if err := write(ctx, c, msg, s.cfg.Retry.AttemptTimeout(), provider.StageSTT); err != nil {
			c.CloseNow()
			return err
		}
		conn = c
		return nil
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	return &sttStream{ctx: ctx, cancel: cancel, conn: conn, timeout: s.cfg.Retry.AttemptTimeout(), redact: s.cfg.redact,
		msg: make([]byte, 0, inputAudioLen)}, nil
}

// write sends one text message within timeout.
func write(ctx context.Context, c *websocket.Conn, msg []byte, timeout time.Duration, stage provider.Stage) error {
	wctx, cancel := context.WithTimeoutCause(ctx, timeout, errIdle)
	defer cancel()
	if err := c.Write(wctx, websocket.MessageText, msg); err != nil {
		return readError(wctx, stage, "write", err, timeout)
	}
	return nil
}

const (
	inputAudioPrefix = `{"type":"input_audio","audio":"`
	inputAudioSuffix = `"}`
	inputAudioLen    = len(inputAudioPrefix) + (ChunkSamples*2+2)/3*4 + len(inputAudioSuffix)
)

type sttStream struct {
	ctx     context.Context
	cancel  context.CancelCauseFunc
	conn    *websocket.Conn
	timeout time.Duration
	redact  provider.Redactor

	mu      sync.Mutex // Write and Finalize
	chunk   [ChunkSamples]int16
	n       int // samples in chunk
	pcm     [ChunkSamples * 2]byte
	msg     []byte // reused input_audio message
	once    sync.Once
	closing atomic.Bool // Close was called: Recv ends with io.EOF
}

// Write buffers audio and sends every complete 50 ms chunk.
func (s *sttStream) Write(samples []int16) (err error) {
	defer s.redact.Scrub(&err)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(samples) > 0 {
		k := copy(s.chunk[s.n:], samples)
		s.n += k
		samples = samples[k:]
		if s.n == ChunkSamples {
			if err := s.sendChunk(); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendChunk sends the buffered samples as one input_audio message.
func (s *sttStream) sendChunk() error {
	pcm := s.pcm[:s.n*2]
	for i, v := range s.chunk[:s.n] {
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	s.n = 0
	m := append(s.msg[:0], inputAudioPrefix...)
	m = base64.StdEncoding.AppendEncode(m, pcm)
	m = append(m, inputAudioSuffix...)
	s.msg = m
	return write(s.ctx, s.conn, m, s.timeout, provider.StageSTT)
}

// Finalize sends what is buffered, then session.finalize.
func (s *sttStream) Finalize() (err error) {
	defer s.redact.Scrub(&err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n > 0 {
		if err := s.sendChunk(); err != nil {
			return err
		}
	}
	return write(s.ctx, s.conn, []byte(`{"type":"session.finalize"}`), s.timeout, provider.StageSTT)
}

// Recv waits for the next event. There are no keepalives: silence from
// the gateway during silence from the user is normal, so no idle timeout.
func (s *sttStream) Recv() (_ provider.STTEvent, err error) {
	defer s.redact.Scrub(&err)
	for {
		_, data, err := s.conn.Read(s.ctx)
		if err != nil {
			// Only our own Close ends a session cleanly; the gateway
			// hanging up, even politely, is unexpected.
			if s.closing.Load() {
				return provider.STTEvent{}, io.EOF
			}
			return provider.STTEvent{}, readError(s.ctx, provider.StageSTT, "read", err, s.timeout)
		}
		ev, ok, err := DecodeSTT(data)
		if err != nil {
			return provider.STTEvent{}, err
		}
		if ok {
			return ev, nil
		}
	}
}

// errClosed is the cancel cause of a stream the caller closed.
var errClosed = errors.New("stream closed")

// Close ends the session: a normal close frame, bounded in time.
func (s *sttStream) Close() error {
	s.once.Do(func() {
		s.closing.Store(true)
		done := make(chan struct{})
		go func() {
			s.conn.Close(websocket.StatusNormalClosure, "")
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		s.cancel(errClosed)
		s.conn.CloseNow()
	})
	return nil
}

// DecodeSTT reads one gateway STT message, by exact field name. ok is
// false for messages that carry nothing for the caller (session.created,
// unknown types). An "error" message becomes a typed error, a malformed
// one a ProtocolError. Optional fields are read loosely: one of the wrong
// type is absent.
func DecodeSTT(data []byte) (ev provider.STTEvent, ok bool, err error) {
	m, err := wire.Decode(data)
	if err != nil {
		return ev, false, provider.Malformed(provider.StageSTT, "STT message", data)
	}
	typ, ok := m.String("type")
	if !ok && m.Has("type") {
		return ev, false, provider.Malformed(provider.StageSTT, "STT message type", data)
	}
	switch typ {
	case "start_of_speech":
		ev.Type = provider.SpeechStarted
	case "interim_transcript":
		ev.Type = provider.InterimTranscript
	case "preflight_transcript":
		ev.Type = provider.PreflightTranscript
	case "final_transcript":
		ev.Type = provider.FinalTranscript
	case "session.finalized":
		ev.Type = provider.Finalized
	case "error", "inference_quota_exceeded":
		return ev, false, provider.FromStreamMessage(provider.StageSTT, data)
	case "session.closed":
		return ev, false, &provider.ConnectionError{Stage: provider.StageSTT, Op: "read", Err: errors.New("the gateway closed the session")}
	default:
		return ev, false, nil
	}
	str := func(k string, limit int) string {
		s, _ := m.String(k)
		return safetext.Sanitize(s, limit)
	}
	ev.Text = str("transcript", 2000)
	ev.Language = str("language", 16)
	ev.Confidence, _ = m.Number("confidence")
	ev.Start = seconds(m.Number("start"))
	ev.Duration = seconds(m.Number("duration"))
	return ev, true, nil
}

// seconds converts a gateway time in seconds; anything else is 0.
func seconds(s float64, ok bool) time.Duration {
	if !ok || s < 0 || s > 86400 {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}
