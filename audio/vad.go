package audio

// VoiceDetector tells voice from background by energy, in 20 ms frames,
// against a noise floor that follows the room: it falls at once to a
// quieter frame and rises slowly (0.05 dB a frame, 2.5 dB/s) during
// silence, so steady noise stops counting as voice within seconds.
type VoiceDetector struct {
	frame int     // samples per 20 ms
	Above float64 // dB over the floor that counts as voice (default 12)
	Min   float64 // dBFS below which nothing is voice (default -55)
	Boost float64 // extra dB while the agent speaks (half-duplex gate)
	floor float64
	buf   []int16
}

// Defaults of VoiceDetector.
const (
	DefaultVoiceAbove = 12.0
	DefaultVoiceMin   = -55.0
	initialFloor      = -60.0
)

// NewVoiceDetector returns a detector for mono audio at rate.
func NewVoiceDetector(rate int) *VoiceDetector {
	return &VoiceDetector{frame: max(rate/50, 1), Above: DefaultVoiceAbove, Min: DefaultVoiceMin, floor: initialFloor}
}

// FrameDuration is the detector's frame length in seconds.
const FrameDuration = 0.02

// Feed classifies every complete 20 ms frame of p, in order, calling fn
// with whether it is voice and its level in dBFS. A partial frame waits
// for the next call.
func (d *VoiceDetector) Feed(p []int16, fn func(voiced bool, level float64)) {
	for len(p) > 0 {
		if len(d.buf) == 0 && len(p) >= d.frame {
			d.frame1(p[:d.frame], fn)
			p = p[d.frame:]
			continue
		}
		k := min(d.frame-len(d.buf), len(p))
		d.buf = append(d.buf, p[:k]...)
		p = p[k:]
		if len(d.buf) == d.frame {
			d.frame1(d.buf, fn)
			d.buf = d.buf[:0]
		}
	}
}

func (d *VoiceDetector) frame1(f []int16, fn func(bool, float64)) {
	level := RMS(f)
	voiced := level > max(d.floor+d.Above+d.Boost, d.Min+d.Boost)
	if level < d.floor {
		d.floor = level
	} else if !voiced {
		d.floor += 0.05
	}
	fn(voiced, level)
}

// Floor is the current noise floor in dBFS.
func (d *VoiceDetector) Floor() float64 { return d.floor }
