package echo

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// Options tune a Source. Zero values are the defaults.
type Options struct {
	// MaxDelay is the longest delay searched between what played and its
	// echo: device buffers and the sound server (default 500 ms).
	MaxDelay time.Duration
	// Failed, when set, hears (once, from its own goroutine) that the
	// canceller failed: the microphone then passes as it is, echo and
	// all, and the user should be told.
	Failed func(error)
}

// engine is an echo canceller working on frames.
type engine interface {
	process(mic, ref, out []int16) error
	close()
}

// Processing constants.
const (
	frame = rate / 100 // 10 ms: the canceller's frame
	// margin places the echo this far after the reference the canceller
	// is given: its filter is causal, and the measure may land a little
	// late.
	margin = rate / 100
	// window is the stretch correlated to measure the delay; one is
	// measured every half window while the speaker plays.
	window = rate / 2
	// muteLimit is how long, past the longest delay after a run's first
	// sound, frames are silenced while its delay is not measured.
	muteLimit = rate * 3 / 10
	// activeLevel is the reference level (dBFS) from which a frame counts
	// as the speaker playing.
	activeLevel = -50.0
)

// Stats say how the delay measurement is doing.
type Stats struct {
	// Delay between what played and its echo in the microphone, once
	// Measured.
	Delay    time.Duration
	Measured bool
	// Realigned counts the changes of the delay after the first measure.
	Realigned int
}

// Source is a microphone with the speaker's echo taken out. It delivers
// audio.Pipeline (16 kHz mono), as its microphone must.
type Source struct {
	mic audio.Source
	ref *Reference
	c   engine

	pos     int64   // timeline position of the next microphone sample; -1 before the first
	in      []int16 // microphone samples short of a frame
	out     []int16 // processed samples not yet read
	buf     []int16
	refBuf  []int16
	outBuf  []int16
	window  []int16 // what played around the last window heard, for the delay
	maxLag  int
	history []int16 // the last window of microphone audio, for the delay
	since   int     // samples since the last delay measurement
	now     func() time.Time
	est     delayEstimator

	mu        sync.Mutex
	delay     int // samples: the microphone at q hears what played at q-delay
	measured  bool
	echoless  bool  // a run played long enough and no echo was found (headphones)
	pending   int   // a changed delay measured once, to confirm; -1: none
	realigned int   // times the delay in use changed
	run       int64 // the speaker's run (Reference.runs) frames are aligned to
	aligned   bool  // the delay of this run is measured
	placed    int64 // where the microphone was last placed anew after its start; -1: never
	failed    func(error)
}

// NewSource wraps mic (audio.Pipeline), taking out the echo of what ref
// says played. Close closes mic.
func NewSource(mic audio.Source, ref *Reference, opts *Options) (*Source, error) {
	if mic.Format() != audio.Pipeline {
		return nil, errors.New("echo: the microphone must deliver 16 kHz mono")
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 500 * time.Millisecond
	}
	c, err := newCanceller()
	if err != nil {
		return nil, err
	}
	maxLag := audio.Pipeline.Samples(o.MaxDelay)
	return &Source{mic: mic, ref: ref, c: c, pos: -1, pending: -1, placed: -1, now: time.Now, buf: make([]int16, 3*frame*2),
		refBuf: make([]int16, frame), outBuf: make([]int16, frame), window: make([]int16, maxLag+window),
		history: make([]int16, 0, 2*window), maxLag: maxLag, failed: o.Failed}, nil
}

// Format is audio.Pipeline.
func (s *Source) Format() audio.Format { return audio.Pipeline }

// Close closes the microphone and frees the canceller.
func (s *Source) Close() error {
	err := s.mic.Close()
	s.mu.Lock()
	if s.c != nil {
		s.c.close()
		s.c = nil
	}
	s.mu.Unlock()
	return err
}

// Stats reports the delay measured and how often it moved.
func (s *Source) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Delay: audio.Pipeline.Duration(s.delay), Measured: s.measured, Realigned: s.realigned}
}

// Read returns processed audio: whole frames, so up to 10 ms behind the
// microphone.
func (s *Source) Read(ctx context.Context, p []int16) (int, error) {
	for len(s.out) == 0 {
		n, err := s.mic.Read(ctx, s.buf)
		if n > 0 {
			s.place(n)
			s.in = append(s.in, s.buf[:n]...)
			s.processFrames()
		}
		if err != nil {
			if len(s.out) > 0 {
				break // the error comes with the next Read
			}
			if err == io.EOF && len(s.in) > 0 {
				s.out, s.in = append(s.out, s.in...), s.in[:0] // the last partial frame, as it was
				break
			}
			return 0, err
		}
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

// Limits of the microphone's count against the clock (see place).
const (
	lostLimit  = rate * 3 / 10 // behind the clock by this much: audio was lost
	aheadLimit = rate / 50     // ahead by this much: it had waited in a buffer
)

// place puts the n samples just read on the timeline: they end about now.
// A microphone runs at its own pace, so it is placed by the clock at its
// start, and again when its count and the clock part. Behind: it lost
// audio (or stalled). Ahead: what it delivered had waited in its buffer
// (audio is read after it is heard: on a loaded machine the first read
// found 400 ms waiting, and the delay, then past its longest, was never
// measured), or its clock runs fast. Placed anew, its delay is measured
// anew, as at a new run of the speaker; except when it is only moved back
// while aligned: the delay shrinks by as much, and the canceller goes on
// with the same reference (a fast clock's 20 ms every few minutes).
func (s *Source) place(n int) {
	start := s.ref.position(s.now()) - int64(n) - int64(len(s.in))
	if s.pos < 0 {
		s.pos = start
		return
	}
	if start <= s.pos+lostLimit && start >= s.pos-aheadLimit {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.delay + int(start-s.pos); start < s.pos && s.aligned && d >= 0 {
		s.delay, s.pos = d, start
		return
	}
	s.pos = start
	s.aligned, s.pending, s.placed = false, -1, start
}

// processFrames cancels the echo in every whole frame of s.in.
//
// Each time the speaker starts again (a run, see Reference), or the
// microphone is placed anew (see place), their places on the timeline are
// only known to the wall clock's accuracy, so the delay is measured anew
// (in about 100 ms). Until then the canceller is not fed (out of step, it
// would learn nonsense), and frames that may hold the echo are silenced:
// passed on, the agent's first syllables would count as the user speaking
// (on the first reply too: before anything is known of the room). That
// lasts muteLimit past the longest delay at most, counted from the run's
// first sound or the placing: an echo that cannot be found has gone
// (headphones), and the microphone is passed on as it is. Once a whole
// first stretch of sound has played with no echo found at all, nothing is
// silenced any more (headphones again: barge-in must not wait) until an
// echo is found after all. The room has not changed, so what the
// canceller learnt holds once the reference is back in step.
func (s *Source) processFrames() {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := 0
	for ; k+frame <= len(s.in); k += frame {
		mic := s.in[k : k+frame]
		run, first, last := s.ref.runs()
		if run != s.run {
			s.run, s.aligned, s.pending = run, false, -1
		}
		s.ref.read(s.pos-int64(s.delay)+margin, s.refBuf)
		// The stretch in which an unmeasured echo is looked for: from the
		// run's first sound (or the placing) to muteLimit past the longest
		// delay, and no longer than the longest delay after the last sound.
		from := max(first, s.placed)
		looked := first >= 0 && s.pos >= from+int64(s.maxLag+muteLimit)
		unsure := !s.echoless && first >= 0 && !looked && s.pos < last+int64(s.maxLag)
		switch {
		case s.c == nil:
			copy(s.outBuf, mic) // the canceller failed: the microphone as it is
		case s.aligned:
			if err := s.c.process(mic, s.refBuf, s.outBuf); err != nil {
				s.fail(err)
				copy(s.outBuf, mic)
			}
		case unsure:
			clear(s.outBuf) // the echo of what played may be in it
		default:
			if looked && !s.measured && last >= from+muteLimit {
				s.echoless = true // played long enough to be heard, and nothing was
			}
			copy(s.outBuf, mic)
		}
		s.out = append(s.out, s.outBuf...)
		if s.c != nil {
			s.remember(mic)
		}
		s.pos += frame
	}
	s.in = append(s.in[:0], s.in[k:]...)
}

// fail gives up the canceller: from now on the microphone passes as it
// is, and Options.Failed hears why.
func (s *Source) fail(err error) {
	s.c.close()
	s.c = nil
	if s.failed != nil {
		go s.failed(err)
	}
}

// remember keeps the last window of microphone audio and, while the
// speaker plays, measures the delay: every half window, or every 50 ms
// over a half window while the run's delay is unknown (the sooner it is
// known, the less echo passes).
func (s *Source) remember(mic []int16) {
	// Trimmed once it holds two windows: a copy every half second, not
	// every frame.
	if len(s.history)+len(mic) > cap(s.history) {
		s.history = append(s.history[:0], s.history[len(s.history)-window:]...)
	}
	s.history = append(s.history, mic...)
	s.since += len(mic)
	every, w := window/2, window
	if !s.aligned {
		every, w = 5*frame, window/2
	}
	if s.since < every || len(s.history) < w {
		return
	}
	s.since = 0
	heard := s.history[len(s.history)-w:]
	end := s.pos + frame // after this frame
	ref := s.window[:s.maxLag+w]
	s.ref.read(end-int64(len(ref)), ref)
	if audio.RMS(ref) <= activeLevel || audio.RMS(heard) <= activeLevel {
		return // nothing played that could be heard now, or nothing heard
	}
	lag, c := s.est.estimate(heard, ref, s.maxLag)
	if c < minCorrelation {
		return
	}
	s.align(lag)
}

// align follows a measured delay. A measure is trusted once the next one
// agrees with it (within jitter, 2 samples): a single one may be the user
// talking over the agent. Within a run, a change of 2 samples or less is
// the measure's own noise; a larger one is the path's (a device's
// buffering moved) and the reference moves with it.
func (s *Source) align(lag int) {
	confirmed := s.pending >= 0 && abs(lag-s.pending) <= 2
	switch {
	case s.aligned && abs(lag-s.delay) <= 2:
		s.pending = -1
	case !confirmed:
		s.pending = lag
	default:
		if s.measured && abs(lag-s.delay) > 2 {
			s.realigned++
		}
		// The canceller is given the recent past of a new run, silenced
		// while the delay was unknown: a learnt one steps back in, a new
		// one starts learning before its output is heard.
		fresh := !s.aligned
		// An echo after all (the first sound may have been too short or
		// too plain to measure, an earcon): silenced again at each run.
		s.delay, s.measured, s.aligned, s.pending, s.echoless = lag, true, true, -1, false
		if fresh {
			s.prime()
		}
	}
}

// primeFrames is how much of the recent past the canceller is given when
// a run is aligned: the echo of a frame comes from what played over the
// last tens of milliseconds, which it must have seen.
const primeFrames = 15

// prime runs the canceller over the last frames heard (the current one
// included), now that they can be aligned; its output is dropped (those
// frames have gone out, silenced: outBuf is free again).
func (s *Source) prime() {
	m := min(len(s.history)/frame, primeFrames)
	for j := range m {
		mic := s.history[len(s.history)-(m-j)*frame:][:frame]
		pos := s.pos + frame - int64(m-j)*frame
		s.ref.read(pos-int64(s.delay)+margin, s.refBuf)
		if err := s.c.process(mic, s.refBuf, s.outBuf); err != nil {
			s.fail(err)
			return
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
