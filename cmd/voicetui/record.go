package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/device"
	"github.com/voicetui/voicetui/audio/echo"
	"github.com/voicetui/voicetui/audio/playback"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// audioIO is what a conversation hears and speaks through.
type audioIO struct {
	mic audio.Source
	spk audio.Sink
	// reopenMic opens the microphone again (a device, not --input).
	reopenMic func(context.Context) (audio.Source, error)
	// Under the interface a missing device does not stop voicetui: typed
	// turns work without a microphone, replies show as text without a
	// speaker. These say which is missing, for the status pane.
	noMic, noSpeaker error
	// echo says whether the speaker's echo is taken out of the
	// microphone: "on", or "off" with why. echoWorking says it still is
	// (nil when off): a canceller that failed is given up.
	echo        string
	echoWorking func() bool
}

// openAudio opens the microphone (or --input) and the speaker (or
// --output), with --record taps that report a failed recording to
// recordFailed.
func openAudio(c config, closers *closers, recordFailed, echoFailed func(error)) (audioIO, error) {
	var io audioIO
	openMic := func() (audio.Source, error) { return device.OpenCapture(&device.CaptureOptions{Device: c.inputDevice}) }
	// The microphone opens before the speaker: opening a non-default
	// speaker first would redirect ALSA's default for the microphone too.
	if c.input == "" {
		m, err := openMic()
		switch {
		case err == nil:
			closers.add(m.Close)
			io.mic = m
			io.reopenMic = func(context.Context) (audio.Source, error) { return openMic() }
		case c.tui && c.inputDevice == "":
			// No default microphone (a device the user named and is not
			// there stays an error: exit 2 with what to try).
			io.noMic, io.mic = err, silentSource{}
		default:
			return io, err
		}
	}
	if c.output == "" {
		s, err := openSpeaker(c)
		switch {
		case err == nil:
			closers.add(s.Close)
			io.spk = s
		case c.tui && c.outputDevice == "":
			// A clock in place of the device: the session keeps its
			// timing, the replies show as text.
			clock, cerr := audio.NewClockSink(audio.Format{SampleRate: outputRate, Channels: 1}, nil)
			if cerr != nil {
				return io, cerr
			}
			closers.add(clock.Close)
			io.noSpeaker, io.spk = err, clock
		default:
			return io, err
		}
	}
	cancelEcho(c, &io, closers, echoFailed)
	if c.input != "" {
		src, err := audio.NewWAVSource(c.input, &audio.WAVSourceOptions{Realtime: true})
		if err != nil {
			return io, configError{err}
		}
		closers.add(src.Close)
		if io.mic, err = audio.Resampled(src, audio.PipelineRate); err != nil {
			return io, configError{fmt.Errorf("--input %s: %w", c.input, err)}
		}
	}
	if c.output != "" {
		s, err := clockSinkToWAV(c.output, closers)
		if err != nil {
			return io, err
		}
		io.spk = s
	}
	if c.record != "" {
		rec, err := clockSinkToWAV(filepath.Join(c.record, "speaker.wav"), closers)
		if err != nil {
			return io, err
		}
		ts := &teeSink{Sink: io.spk, rec: rec, failed: recordFailed}
		if rate := io.spk.Format().SampleRate; rate != outputRate {
			ts.rs, _ = audio.NewResampler(rate, outputRate)
		}
		io.spk = ts
		w, err := audio.CreateWAV(filepath.Join(c.record, "mic.wav"), audio.Pipeline)
		if err != nil {
			return io, configError{err}
		}
		closers.add(w.Close)
		io.mic = teeSource{io.mic, w, recordFailed}
		if reopen := io.reopenMic; reopen != nil {
			io.reopenMic = func(ctx context.Context) (audio.Source, error) {
				m, err := reopen(ctx)
				if err != nil {
					return nil, err
				}
				return teeSource{m, w, recordFailed}, nil
			}
		}
	}
	return io, nil
}

// cancelEcho puts an echo canceller on the microphone, fed by what the
// speaker plays (--aec on, the default), when both are devices.
func cancelEcho(c config, io *audioIO, closers *closers, failed func(error)) {
	spk, isSpeaker := io.spk.(*playback.Speaker)
	switch {
	case !c.aec:
		io.echo = "off"
		return
	case c.input != "":
		io.echo = "off (--input)"
		return
	case c.output != "":
		io.echo = "off (--output)"
		return
	case io.mic == nil || io.noMic != nil:
		io.echo = "off (no microphone)"
		return
	case !isSpeaker:
		io.echo = "off (no speaker)"
		return
	case !echo.Available:
		io.echo = "off (not in this build: built without webrtc-audio-processing)"
		return
	}
	ref := echo.NewReference()
	var broken atomic.Bool
	opts := &echo.Options{Failed: func(err error) {
		broken.Store(true)
		failed(err)
	}}
	wrap := func(m audio.Source) (audio.Source, error) {
		return echo.NewSource(m, ref, opts)
	}
	mic, err := wrap(io.mic)
	if err != nil {
		io.echo = "off (" + safetext.Sanitize(err.Error(), 200) + ")"
		return // the conversation works without it
	}
	closers.add(mic.Close) // closes the device under it too (idempotent)
	io.mic = mic
	if reopen := io.reopenMic; reopen != nil {
		io.reopenMic = func(ctx context.Context) (audio.Source, error) {
			m, err := reopen(ctx)
			if err != nil {
				return nil, err
			}
			w, err := wrap(m)
			if err != nil {
				m.Close()
				return nil, err
			}
			return w, nil
		}
	}
	spk.SetMonitor(ref)
	io.echo = "on (" + echo.Library + ")"
	io.echoWorking = func() bool { return !broken.Load() }
}

// silentSource is a microphone that is not there: it waits, silent.
type silentSource struct{}

func (silentSource) Format() audio.Format { return audio.Pipeline }
func (silentSource) Close() error         { return nil }
func (silentSource) Read(ctx context.Context, _ []int16) (int, error) {
	<-ctx.Done()
	return 0, ctx.Err()
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

// Err is the speaker's: a conversation watches an idle speaker through it
// (conversation.WatchSpeaker), and the recording must not hide it.
func (t *teeSink) Err() error {
	if e, ok := t.Sink.(interface{ Err() error }); ok {
		return e.Err()
	}
	return nil
}

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

// notes are the status pane's words for the devices that are missing.
func (io audioIO) notes() []conversation.Error {
	var out []conversation.Error
	if io.noMic != nil {
		out = append(out, conversation.Error{Stage: "device", Attempt: 1,
			Message: safetext.Sanitize("no microphone: "+io.noMic.Error(), 400),
			Hint:    "type your turns (enter sends); to talk, pick a microphone from `voicetui devices` with --input-device"})
	}
	if io.noSpeaker != nil {
		out = append(out, conversation.Error{Stage: "device", Attempt: 1,
			Message: safetext.Sanitize("no speaker, audio is off: "+io.noSpeaker.Error(), 400),
			Hint:    "replies are shown as text; pick a speaker from `voicetui devices` with --output-device"})
	}
	return out
}
