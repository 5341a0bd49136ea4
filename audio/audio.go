// Package audio holds voicetui's sound plumbing that needs no device:
// formats, the Source and Sink interfaces, a ring buffer, sample-rate
// conversion, WAV files and level metering. Device back ends live in the
// sub-packages device (PortAudio capture) and playback (oto), so cgo stays
// contained there.
package audio

import (
	"context"
	"fmt"
	"time"
)

// Format describes interleaved 16-bit PCM.
type Format struct {
	SampleRate int // frames per second
	Channels   int // 1 (mono) or 2 (stereo)
}

// Pipeline is the internal format of voicetui's audio path: 16-bit mono PCM
// at 16 kHz, what speech-to-text engines want.
var Pipeline = Format{SampleRate: PipelineRate, Channels: 1}

// PipelineRate is the sample rate of Pipeline.
const PipelineRate = 16000

// Validate reports a format that cannot be used.
func (f Format) Validate() error {
	if f.SampleRate < 1000 || f.SampleRate > 384000 {
		return fmt.Errorf("audio: unsupported sample rate %d Hz", f.SampleRate)
	}
	if f.Channels != 1 && f.Channels != 2 {
		return fmt.Errorf("audio: unsupported channel count %d (want 1 or 2)", f.Channels)
	}
	return nil
}

// String renders "16000 Hz mono".
func (f Format) String() string {
	ch := "mono"
	if f.Channels == 2 {
		ch = "stereo"
	} else if f.Channels != 1 {
		ch = fmt.Sprintf("%d channels", f.Channels)
	}
	return fmt.Sprintf("%d Hz %s", f.SampleRate, ch)
}

// Duration is the play time of n interleaved samples.
func (f Format) Duration(n int) time.Duration {
	if f.SampleRate <= 0 || f.Channels <= 0 {
		return 0
	}
	return time.Duration(int64(n/f.Channels) * int64(time.Second) / int64(f.SampleRate))
}

// Samples is the number of interleaved samples that play for d.
func (f Format) Samples(d time.Duration) int {
	return int(int64(d)*int64(f.SampleRate)/int64(time.Second)) * f.Channels
}

// Source produces audio, e.g. a microphone or a WAV file.
type Source interface {
	// Format is the format of the samples Read returns.
	Format() Format
	// Read blocks until at least one sample is available, ctx is done or
	// the source ends (io.EOF), and returns the number of samples copied.
	Read(ctx context.Context, p []int16) (int, error)
	// Close releases the source; it is idempotent.
	Close() error
}

// Sink consumes audio, e.g. a speaker or a WAV file.
type Sink interface {
	// Format is the format Write expects.
	Format() Format
	// Write queues p for playback. It blocks while the sink's queue is full
	// and returns early with ctx's error when ctx is done.
	Write(ctx context.Context, p []int16) (int, error)
	// Flush drops all queued audio (barge-in): output falls silent at once.
	Flush()
	// Drain waits until everything written so far has been played.
	Drain(ctx context.Context) error
	// Close releases the sink; it is idempotent.
	Close() error
}

// Monitor hears what a speaker hands its device, in order, silence
// included: the reference an echo canceller subtracts from the
// microphone (audio/echo). Its methods are called from the device's own
// goroutine and must return at once.
type Monitor interface {
	// Played: p (mono at rate) was handed to the device at about at; it
	// is heard a device buffer later. A device that starts again after a
	// pause shows as a gap in at.
	Played(p []int16, rate int, at time.Time)
	// Unplayed: the last n samples Played (at its rate) will never play:
	// a queue was dropped (barge-in, a new stream).
	Unplayed(n int)
}
