package audio

// VoiceDetector tells voice from background by energy, in 20 ms frames,
// against a noise floor that follows the room: the floor is the quietest
// frame of the last 3 s. Speech has pauses that reach the floor; a steady
// noise, however loud, becomes the floor within 3 s and stops counting as
// voice.
type VoiceDetector struct {
	frame int     // samples per 20 ms
	Above float64 // dB over the floor that counts as voice (default 12)
	Min   float64 // dBFS below which nothing is voice (default -55)
	Boost float64 // extra dB while the agent speaks (half-duplex gate)
	// Residue raises Min only, while the agent speaks through an echo
	// canceller: what it leaves of the echo (20-35 dB under it, less
	// while it relearns after the path moved) must not count as voice in
	// a silent room, where Min and not the floor sets the threshold. On
	// the rig the echo is at -31 dBFS and the residue reached -47.
	Residue float64
	floor   float64
	buf     []int16
	hist    [floorFrames]float64 // levels of the last frames, a ring
	n       int                  // frames seen
}

// floorFrames is the window of the floor: 3 s.
const floorFrames = 150

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
	d.hist[d.n%floorFrames] = level
	d.n++
	d.floor = level
	for _, l := range d.hist[:min(d.n, floorFrames)] {
		d.floor = min(d.floor, l)
	}
	if d.n < floorFrames/3 {
		d.floor = min(d.floor, initialFloor) // the first second: assume a quiet room
	}
	voiced := level > max(d.floor+d.Above+d.Boost, d.Min+d.Boost+d.Residue)
	fn(voiced, level)
}

// Floor is the current noise floor in dBFS.
func (d *VoiceDetector) Floor() float64 { return d.floor }
