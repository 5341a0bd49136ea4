package openai

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/openai/openai-go/v3"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// Speech implements provider.TTS with POST /audio/speech and
// response_format "pcm" (24 kHz 16-bit mono, streamed as it is made).
// Each pushed sentence is one request, sent when the previous one has
// been read, so speech starts after the first sentence, not the reply.
type Speech struct {
	cfg Config
}

// NewSpeech checks cfg and returns its speech client.
func NewSpeech(cfg Config) (*Speech, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &Speech{cfg: cfg}, nil
}

func (s *Speech) SampleRate() int { return SpeechRate }
func (s *Speech) Close() error    { return nil }

// Synthesize starts an utterance.
func (s *Speech) Synthesize(ctx context.Context) (provider.Utterance, error) {
	ctx, cancel := context.WithCancel(ctx)
	return &speech{s: s, ctx: ctx, cancel: cancel, texts: make(chan string, 64), buf: make([]byte, 8192)}, nil
}

type speech struct {
	s      *Speech
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex // Push and Flush against each other
	flushed bool
	texts   chan string // closed by Flush

	cur  *body  // the sentence being read
	buf  []byte // bytes read and not yet returned
	have int    // how many: an odd byte carried over, or an attempt's first read
	pcm  []int16
}

func (u *speech) Push(text string) (err error) {
	defer u.s.cfg.redact.Scrub(&err)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.flushed {
		return errors.New("tts: utterance already flushed")
	}
	select {
	case u.texts <- text:
		return nil
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
}

func (u *speech) Flush() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.flushed {
		u.flushed = true
		close(u.texts)
	}
	return nil
}

// Recv returns the next audio; io.EOF after the last sentence.
func (u *speech) Recv() (_ []int16, err error) {
	defer u.s.cfg.redact.Scrub(&err)
	for {
		if u.cur == nil {
			var text string
			var ok bool
			select {
			case text, ok = <-u.texts:
			case <-u.ctx.Done():
				return nil, context.Cause(u.ctx)
			}
			if !ok {
				return nil, io.EOF
			}
			if err := u.open(text); err != nil {
				return nil, err
			}
		}
		if u.have < 2 {
			n, err := u.cur.Read(u.buf[u.have:])
			u.have += n
			if err == io.EOF && u.have < 2 {
				u.cur.Close()
				u.cur, u.have = nil, 0 // a lone trailing byte is not a sample
				continue
			}
			if err != nil && err != io.EOF {
				u.cur.Close()
				u.cur, u.have = nil, 0
				return nil, err
			}
			if u.have < 2 {
				continue
			}
		}
		even := u.have &^ 1
		u.pcm = u.pcm[:0]
		for i := 0; i < even; i += 2 {
			u.pcm = append(u.pcm, int16(binary.LittleEndian.Uint16(u.buf[i:])))
		}
		if u.have > even {
			u.buf[0] = u.buf[even]
		}
		u.have -= even
		return u.pcm, nil
	}
}

// open requests one sentence, retrying per the configuration until its
// first bytes arrive (they wait in buf).
func (u *speech) open(text string) error {
	payload, err := json.Marshal(openai.AudioSpeechNewParams{
		Model:          u.s.cfg.TTSModel,
		Voice:          openai.AudioSpeechNewParamsVoiceUnion{OfString: openai.String(u.s.cfg.Voice)},
		Input:          text,
		ResponseFormat: openai.AudioSpeechNewParamsResponseFormatPCM,
	})
	if err != nil {
		return err
	}
	return u.s.cfg.Retry.Do(u.ctx, func(ctx context.Context) error {
		_, b, err := send(ctx, provider.StageTTS, u.s.cfg.client(), u.s.cfg.Retry.AttemptTimeout(), func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.s.cfg.endpoint("/audio/speech"), bytes.NewReader(payload))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", "application/json")
			return req, u.s.cfg.authorize(req)
		})
		if err != nil {
			return err
		}
		n, err := io.ReadAtLeast(b, u.buf, 2)
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			b.Close()
			return err
		}
		u.cur, u.have = b, n
		return nil
	})
}

// Close abandons the utterance: cancelling its context ends the request
// in flight (Recv closes the body when it sees that).
func (u *speech) Close() error {
	u.cancel()
	return nil
}
