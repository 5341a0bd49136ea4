package audio

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// A WAV file as a Source: what --input plays instead of the microphone.

// WAVSourceOptions tune NewWAVSource.
type WAVSourceOptions struct {
	// Realtime paces Read like a microphone: a chunk is returned only once
	// the wall clock has caught up with the audio delivered so far.
	Realtime bool
	// Chunk is the duration Read returns at most; default 20 ms.
	Chunk time.Duration
}

// WAVSource is a Source that plays a WAV file, downmixed to mono.
type WAVSource struct {
	r      *WAVReader
	opts   WAVSourceOptions
	format Format
	start  time.Time
	sent   int
	buf    []int16
	once   sync.Once
}

// NewWAVSource opens path as a mono Source at the file's sample rate.
func NewWAVSource(path string, opts *WAVSourceOptions) (*WAVSource, error) {
	r, err := OpenWAV(path)
	if err != nil {
		return nil, err
	}
	s := &WAVSource{r: r, format: Format{SampleRate: r.Format().SampleRate, Channels: 1}}
	if opts != nil {
		s.opts = *opts
	}
	if s.opts.Chunk <= 0 {
		s.opts.Chunk = 20 * time.Millisecond
	}
	return s, nil
}

// Format is mono at the file's rate.
func (s *WAVSource) Format() Format { return s.format }

// Read returns up to one chunk of mono samples; io.EOF at the end.
func (s *WAVSource) Read(ctx context.Context, p []int16) (int, error) {
	n := min(len(p), s.format.Samples(s.opts.Chunk))
	if n == 0 {
		return 0, nil
	}
	if s.opts.Realtime {
		if s.start.IsZero() {
			s.start = time.Now()
		}
		due := s.start.Add(s.format.Duration(s.sent + n))
		if wait := time.Until(due); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return 0, ctx.Err()
			case <-t.C:
			}
		}
	} else if err := ctx.Err(); err != nil {
		return 0, err
	}
	ch := s.r.Format().Channels
	if cap(s.buf) < n*ch {
		s.buf = make([]int16, n*ch)
	}
	got, err := s.r.ReadSamples(s.buf[:n*ch])
	if ch == 2 {
		got = len(DownmixStereo(s.buf[:got&^1], p[:0]))
	} else {
		copy(p, s.buf[:got])
	}
	s.sent += got
	if got > 0 && errors.Is(err, io.EOF) {
		err = nil
	}
	return got, err
}

// Close closes the file.
func (s *WAVSource) Close() error {
	var err error
	s.once.Do(func() { err = s.r.Close() })
	return err
}

// WAVSink is a Sink that records to a WAV file. Nothing is queued, so Flush
// and Drain have nothing to do.
type WAVSink struct {
	mu sync.Mutex
	w  *WAVWriter
}

// NewWAVSink creates path and records samples in format f.
func NewWAVSink(path string, f Format) (*WAVSink, error) {
	w, err := CreateWAV(path, f)
	if err != nil {
		return nil, err
	}
	return &WAVSink{w: w}, nil
}

func (s *WAVSink) Format() Format { return s.w.Format() }

func (s *WAVSink) Write(ctx context.Context, p []int16) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.WriteSamples(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *WAVSink) Flush()                          {}
func (s *WAVSink) Drain(ctx context.Context) error { return ctx.Err() }

func (s *WAVSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Close()
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// printable keeps chunk ids from a hostile file out of the terminal.
func printable(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}
