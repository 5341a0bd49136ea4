package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"sync"

	"github.com/openai/openai-go/v3"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// MaxUtterance caps the audio one transcription request carries (OpenAI
// accepts 25 MB; 5 minutes at 16 kHz is under 10 MB).
const MaxUtterance = 5 * 60 * audio.PipelineRate

// Transcriber implements provider.STT with POST /audio/transcriptions:
// audio is buffered until Finalize, then sent as one WAV file. There are
// no interim transcripts on this protocol.
type Transcriber struct {
	cfg Config
}

// NewTranscriber checks cfg and returns its transcriber.
func NewTranscriber(cfg Config) (*Transcriber, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &Transcriber{cfg: cfg}, nil
}

// TurnAudioOnly says that only turns should be written: every second
// written is uploaded and billed at the next Finalize.
func (t *Transcriber) TurnAudioOnly() bool { return true }

// Stream opens a stream; nothing is sent until Finalize.
func (t *Transcriber) Stream(ctx context.Context) (provider.STTStream, error) {
	ctx, cancel := context.WithCancel(ctx)
	s := &transcription{t: t, ctx: ctx, cancel: cancel, jobs: make(chan []int16, 8), events: make(chan result, 16)}
	s.wg.Add(1)
	go s.work()
	return s, nil
}

type result struct {
	ev  provider.STTEvent
	err error
}

type transcription struct {
	t      *Transcriber
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan []int16 // utterances to send, in order
	events chan result

	mu    sync.Mutex
	audio []int16
	wg    sync.WaitGroup
}

// Write buffers audio for the next Finalize.
func (s *transcription) Write(samples []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		return errors.New("stt: stream closed")
	}
	if len(s.audio)+len(samples) > MaxUtterance {
		return &provider.ProtocolError{Stage: provider.StageSTT, Detail: "utterance longer than 5 minutes; call Finalize more often"}
	}
	s.audio = append(s.audio, samples...)
	return nil
}

// Finalize queues the buffered audio; its transcript (or error) arrives
// through Recv, followed by Finalized. Utterances are sent one at a time,
// in order.
func (s *transcription) Finalize() error {
	s.mu.Lock()
	pcm := s.audio
	s.audio = nil
	s.mu.Unlock()
	select {
	case s.jobs <- pcm:
		return nil
	case <-s.ctx.Done():
		return errors.New("stt: stream closed")
	}
}

func (s *transcription) work() {
	defer s.wg.Done()
	for {
		var pcm []int16
		select {
		case pcm = <-s.jobs:
		case <-s.ctx.Done():
			return
		}
		var out []result
		if len(pcm) > 0 {
			text, err := s.t.transcribe(s.ctx, pcm)
			if err != nil {
				err = s.t.cfg.redact.Error(err)
				out = append(out, result{err: err})
			} else if text != "" {
				out = append(out, result{ev: provider.STTEvent{Type: provider.FinalTranscript, Text: text}})
			}
		}
		out = append(out, result{ev: provider.STTEvent{Type: provider.Finalized}})
		for _, r := range out {
			select {
			case s.events <- r:
			case <-s.ctx.Done():
				return
			}
		}
	}
}

func (s *transcription) Recv() (provider.STTEvent, error) {
	select {
	case r := <-s.events:
		return r.ev, r.err
	case <-s.ctx.Done():
		return provider.STTEvent{}, io.EOF
	}
}

func (s *transcription) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// transcribe posts one utterance, retrying per the configuration.
func (t *Transcriber) transcribe(ctx context.Context, pcm []int16) (string, error) {
	params := openai.AudioTranscriptionNewParams{
		File:           openai.File(bytes.NewReader(audio.EncodeWAV(pcm, audio.Pipeline)), "utterance.wav", "audio/wav"),
		Model:          t.cfg.STTModel,
		ResponseFormat: openai.AudioResponseFormatJSON,
	}
	if t.cfg.Language != "" {
		params.Language = openai.String(t.cfg.Language)
	}
	form, contentType, err := params.MarshalMultipart()
	if err != nil {
		return "", err
	}
	var text string
	err = t.cfg.Retry.Do(ctx, func(ctx context.Context) error {
		_, b, err := send(ctx, provider.StageSTT, t.cfg.client(), t.cfg.Retry.AttemptTimeout(), func(ctx context.Context) (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.cfg.endpoint("/audio/transcriptions"), bytes.NewReader(form))
			if err != nil {
				return nil, err
			}
			req.Header.Set("Content-Type", contentType)
			return req, t.cfg.authorize(req)
		})
		if err != nil {
			return err
		}
		defer b.Close()
		data, err := io.ReadAll(io.LimitReader(b, provider.MaxBody))
		if err != nil {
			return err
		}
		var r struct {
			Text any `json:"text"`
		}
		if json.Unmarshal(data, &r) != nil {
			return provider.Malformed(provider.StageSTT, "transcription", data)
		}
		s, ok := r.Text.(string)
		if !ok {
			return provider.Malformed(provider.StageSTT, "transcription without text", data)
		}
		text = safetext.Sanitize(s, 2000)
		return nil
	})
	return text, err
}
