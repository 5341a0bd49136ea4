package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/device"
)

// openAudio opens the microphone (or --input) and the speaker (or
// --output), with --record taps that report a failed recording to
// recordFailed.
func openAudio(c config, closers *closers, recordFailed func(error)) (audio.Source, audio.Sink, error) {
	var mic audio.Source
	var spk audio.Sink
	switch {
	case c.input == "" && c.output == "":
		m, s, err := openDevices(c)
		if err != nil {
			return nil, nil, err
		}
		closers.add(m.Close, s.Close)
		mic, spk = m, s
	case c.input == "":
		m, err := device.OpenCapture(&device.CaptureOptions{Device: c.inputDevice})
		if err != nil {
			return nil, nil, err
		}
		closers.add(m.Close)
		mic = m
	case c.output == "":
		s, err := openSpeaker(c)
		if err != nil {
			return nil, nil, err
		}
		closers.add(s.Close)
		spk = s
	}
	if c.input != "" {
		src, err := audio.NewWAVSource(c.input, &audio.WAVSourceOptions{Realtime: true})
		if err != nil {
			return nil, nil, configError{err}
		}
		closers.add(src.Close)
		if mic, err = audio.Resampled(src, audio.PipelineRate); err != nil {
			return nil, nil, configError{fmt.Errorf("--input %s: %w", c.input, err)}
		}
	}
	if c.output != "" {
		s, err := clockSinkToWAV(c.output, closers)
		if err != nil {
			return nil, nil, err
		}
		spk = s
	}
	if c.record != "" {
		rec, err := clockSinkToWAV(filepath.Join(c.record, "speaker.wav"), closers)
		if err != nil {
			return nil, nil, err
		}
		ts := &teeSink{Sink: spk, rec: rec, failed: recordFailed}
		if rate := spk.Format().SampleRate; rate != outputRate {
			ts.rs, _ = audio.NewResampler(rate, outputRate)
		}
		spk = ts
		w, err := audio.CreateWAV(filepath.Join(c.record, "mic.wav"), audio.Pipeline)
		if err != nil {
			return nil, nil, configError{err}
		}
		closers.add(w.Close)
		mic = teeSource{mic, w, recordFailed}
	}
	return mic, spk, nil
}

// outputRate is the rate of --output and of recordings of the speaker.
const outputRate = audio.PipelineRate

// clockSinkToWAV is a speaker on a real-time clock recording to path.
func clockSinkToWAV(path string, closers *closers) (*audio.ClockSink, error) {
	f := audio.Format{SampleRate: outputRate, Channels: 1}
	w, err := audio.CreateWAV(path, f)
	if err != nil {
		return nil, configError{err}
	}
	s, err := audio.NewClockSink(f, w.WriteSamples)
	if err != nil {
		w.Close()
		return nil, err
	}
	closers.add(w.Close, s.Close) // closed in reverse: the clock stops first
	return s, nil
}

// teeSink plays to the speaker and to a recording of it (on its own
// clock, so the recording keeps the timeline).
type teeSink struct {
	audio.Sink
	rec    *audio.ClockSink
	mu     sync.Mutex       // a replayed clip may write beside a reply
	rs     *audio.Resampler // speaker rate -> outputRate, when they differ
	buf    []int16
	failed func(error)
}

func (t *teeSink) Write(ctx context.Context, p []int16) (int, error) {
	n, err := t.Sink.Write(ctx, p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > 0 {
		pcm := p[:n]
		if t.rs != nil {
			t.buf = t.rs.Process(t.buf[:0], pcm)
			pcm = t.buf
		}
		if _, rerr := t.rec.Write(ctx, pcm); rerr != nil && ctx.Err() == nil {
			t.failed(fmt.Errorf("speaker.wav: %w", rerr))
		}
	}
	return n, err
}

func (t *teeSink) Flush() { t.Sink.Flush(); t.rec.Flush() }

// teeSource records the microphone.
type teeSource struct {
	audio.Source
	w      *audio.WAVWriter
	failed func(error)
}

func (t teeSource) Read(ctx context.Context, p []int16) (int, error) {
	n, err := t.Source.Read(ctx, p)
	if n > 0 {
		if werr := t.w.WriteSamples(p[:n]); werr != nil {
			t.failed(fmt.Errorf("mic.wav: %w", werr))
		}
	}
	return n, err
}
