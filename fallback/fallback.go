// Package fallback decides and plays what the user hears when a
// conversation ends on an error. The reference SDK spoke its error message through TTS,
// inaudible when TTS is what ran out; here a bundled clip goes straight to
// the speaker, never through TTS, on every unrecoverable close.
package fallback

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/voicetui/voicetui/assets"
	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Clip names a bundled recording.
type Clip string

const (
	Quota       Clip = "quota"       // "The assistant is out of credits: its quota is used up."
	Unavailable Clip = "unavailable" // "The assistant is unavailable. Please try again later."
	Microphone  Clip = "microphone"  // "The microphone stopped working. Check it, then start again."

	// Earcons: short tones for a failure the session goes on after.
	EarconFailed Clip = "earcon_failed" // a turn failed: "that didn't work, go on"
	EarconDevice Clip = "earcon_device" // a device stopped (the microphone)
)

// IsEarcon reports whether c is a short tone rather than a spoken clip.
func (c Clip) IsEarcon() bool { return c == EarconFailed || c == EarconDevice }

// SpeakTimeout bounds speaking ErrorMessage through TTS.
const SpeakTimeout = 6 * time.Second

// Options are the user's choices, in the spirit of the reference SDK's
// error_message.
type Options struct {
	// ErrorMessage, when set, is spoken through TTS instead of a clip,
	// unless TTS is the stage that failed (then the clip plays).
	ErrorMessage string
	// ErrorAudio, when set, replaces the bundled clips (16 kHz mono).
	ErrorAudio []int16
	// NoErrorAudio turns the sound off; the status is still shown.
	NoErrorAudio bool
}

// State is what the decision needs to know about the session.
type State struct {
	TTSFailed bool // TTS failed in this session (its error, or counted ones)
}

// Decision is what to do on an unrecoverable close.
type Decision struct {
	Clip   Clip   // play this clip ("" when Text or nothing)
	Text   string // or speak this through TTS
	Reason string // quota_exhausted, credentials, unavailable, microphone, speaker
}

// None reports a decision to stay silent.
func (d Decision) None() bool { return d.Clip == "" && d.Text == "" }

// Decide is a pure function of the closing error, the session state and
// the options.
func Decide(err error, st State, opts Options) Decision {
	d := Decision{Clip: Unavailable, Reason: "unavailable"}
	var dev *audio.DeviceError
	if errors.As(err, &dev) {
		// A device, not the assistant: say so (a dead speaker will not
		// play it, and the attempt's failure is reported).
		d = Decision{Clip: Microphone, Reason: "microphone"}
		if dev.Direction == "output" {
			d = Decision{Clip: Unavailable, Reason: "speaker"}
		}
	} else if q, ok := provider.AsQuota(err); ok && q.IsTerminal() {
		d = Decision{Clip: Quota, Reason: "quota_exhausted"}
	} else if provider.Terminal(err) {
		d.Reason = "credentials"
	}
	var c provider.Classified
	ttsDown := st.TTSFailed || (errors.As(err, &c) && c.ErrStage() == provider.StageTTS)
	switch {
	case opts.NoErrorAudio:
		d.Clip = ""
	case opts.ErrorMessage != "" && !ttsDown:
		d.Clip, d.Text = "", opts.ErrorMessage
	}
	return d
}

// Samples returns the audio of clip (16 kHz mono): for a spoken clip,
// opts.ErrorAudio when set, else the bundled recording; earcons are
// always the bundled tones. The samples are shared: read them only.
func Samples(clip Clip, opts Options) ([]int16, error) {
	if len(opts.ErrorAudio) > 0 && !clip.IsEarcon() {
		return opts.ErrorAudio, nil
	}
	if !clip.bundled() {
		return nil, fmt.Errorf("fallback: no clip %q", clip)
	}
	d := decoded[clip]
	d.once.Do(func() { d.pcm, d.err = decode(clip) })
	return d.pcm, d.err
}

// decoded holds each bundled clip once decoded (1 to 3 ms of a cold
// process for a spoken clip): a failure's signal should not wait for it
// twice.
var decoded = map[Clip]*struct {
	once sync.Once
	pcm  []int16
	err  error
}{Quota: {}, Unavailable: {}, Microphone: {}, EarconFailed: {}, EarconDevice: {}}

func (c Clip) bundled() bool { _, ok := decoded[c]; return ok }

// Preload decodes, in the background, the bundled clips a gateway's
// failure plays with opts, so the first one is not heard 1-3 ms later for
// it.
func Preload(opts Options) {
	if opts.NoErrorAudio || len(opts.ErrorAudio) > 0 {
		return
	}
	go func() {
		for _, c := range []Clip{Quota, Unavailable} {
			Samples(c, Options{})
		}
	}()
}

func decode(clip Clip) ([]int16, error) {
	var wav []byte
	switch clip {
	case Quota:
		wav = assets.QuotaWAV
	case Unavailable:
		wav = assets.UnavailableWAV
	case Microphone:
		wav = assets.MicrophoneWAV
	case EarconFailed:
		wav = assets.EarconFailedWAV
	case EarconDevice:
		wav = assets.EarconDeviceWAV
	default:
		return nil, fmt.Errorf("fallback: no clip %q", clip)
	}
	r, err := audio.NewWAVReader(bytes.NewReader(wav), string(clip)+".wav")
	if err != nil {
		return nil, err
	}
	out := make([]int16, r.Samples())
	n, err := r.ReadSamples(out)
	if err != nil {
		return nil, err
	}
	return out[:n:n], nil
}

// Play writes pcm (16 kHz mono) to sink, resampled to its rate, and waits
// until it has been heard. It gives up after the clip's length plus two
// seconds, so a hung speaker cannot block a teardown.
func Play(ctx context.Context, sink audio.Sink, pcm []int16) error {
	limit := time.Duration(len(pcm))*time.Second/audio.PipelineRate + 2*time.Second
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if ch := sink.Format().Channels; ch > 1 {
		return fmt.Errorf("fallback: a %d-channel sink is not supported", ch)
	}
	var rs *audio.Resampler
	if rate := sink.Format().SampleRate; rate != audio.PipelineRate {
		var err error
		if rs, err = audio.NewResampler(audio.PipelineRate, rate); err != nil {
			return err
		}
	}
	// A piece at a time: the first sound leaves at once, not after the
	// whole clip has been converted (about 10 ms of CPU for the 4 s quota
	// clip at 48 kHz). The first is what a sleeping speaker takes at once
	// when it wakes (playback: 180 ms); with less it would wait for more.
	const (
		firstPiece = audio.PipelineRate / 5  // 200 ms
		piece      = audio.PipelineRate / 10 // 100 ms
	)
	var buf []int16
	for i, n := 0, firstPiece; i == 0 || i < len(pcm); i, n = i+n, piece {
		out := pcm[i:min(i+n, len(pcm))]
		if rs != nil {
			buf = rs.Process(buf[:0], out)
			if i+n >= len(pcm) {
				buf = rs.Process(buf, make([]int16, rs.Delay())) // the filter's tail
			}
			out = buf
		}
		for len(out) > 0 {
			w, err := sink.Write(ctx, out)
			if err != nil {
				return fmt.Errorf("fallback: play: %w", err)
			}
			out = out[w:]
		}
		// The first piece woke the speaker: its goroutines (oto's, which
		// hands the piece to the sound server) wait for a processor this
		// loop would otherwise hold for the rest of the conversion.
		runtime.Gosched()
	}
	if err := sink.Drain(ctx); err != nil {
		return fmt.Errorf("fallback: play: %w", err)
	}
	return nil
}
