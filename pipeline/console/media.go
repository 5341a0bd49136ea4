package console

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit/agent"

	"github.com/voicetui/voicetui/audio"
)

// wireRate is the console's audio on the wire, both ways: 48 kHz mono
// int16 (agents-js resamples from and to its own 24 kHz).
const wireRate = 48000

// inFrame is one audio_input frame: 10 ms, as lk agent console sends.
const inFrame = wireRate / 100

// micFrames turns 20 ms of the pipeline's microphone into audio_input
// messages of 10 ms at the wire rate.
type micFrames struct {
	rs  *audio.Resampler
	buf []int16
}

func newMicFrames() *micFrames {
	rs, _ := audio.NewResampler(audio.PipelineRate, wireRate) // fixed rates: cannot fail
	return &micFrames{rs: rs}
}

func (m *micFrames) messages(pcm []int16) []*agent.AgentSessionMessage {
	m.buf = m.rs.Process(m.buf, pcm)
	var out []*agent.AgentSessionMessage
	for len(m.buf) >= inFrame {
		out = append(out, &agent.AgentSessionMessage{Message: &agent.AgentSessionMessage_AudioInput{
			AudioInput: frame(m.buf[:inFrame])}})
		m.buf = append(m.buf[:0], m.buf[inFrame:]...)
	}
	return out
}

func frame(pcm []int16) *agent.AgentSessionMessage_ConsoleIO_AudioFrame {
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return &agent.AgentSessionMessage_ConsoleIO_AudioFrame{Data: b, SampleRate: wireRate, NumChannels: 1, SamplesPerChannel: uint32(len(pcm))}
}

// wireRates are the rates an agent's frames may have: the resampler
// takes any, but a rate no framework uses is a broken frame.
var wireRates = map[uint32]bool{8000: true, 16000: true, 22050: true, 24000: true, 32000: true, 44100: true, 48000: true}

// samples decodes an audio_output frame to mono at the wire rate; a frame
// of another shape is refused (ok false), never played as noise.
func samples(f *agent.AgentSessionMessage_ConsoleIO_AudioFrame) (pcm []int16, rate int, ok bool) {
	ch := int(f.GetNumChannels())
	n := int(f.GetSamplesPerChannel())
	if ch < 1 || ch > 2 || !wireRates[f.GetSampleRate()] || len(f.GetData()) != 2*n*ch {
		return nil, 0, false
	}
	pcm = make([]int16, n)
	d := f.GetData()
	for i := range n {
		v := int(int16(binary.LittleEndian.Uint16(d[2*i*ch:])))
		if ch == 2 {
			v = (v + int(int16(binary.LittleEndian.Uint16(d[2*i*ch+2:])))) / 2
		}
		pcm[i] = int16(v)
	}
	return pcm, int(f.GetSampleRate()), true
}

// audibleDBFS is the level above which the agent's audio is speech.
const audibleDBFS = -50

// holdMax bounds how long the agent's audio waits for a local sound (the
// earcon) to end: the speaker has no mixer.
const holdMax = 500 * time.Millisecond

// item is a piece of the agent's audio, or the end of a segment (flush:
// answer audio_playback_finished once it has been heard).
type item struct {
	pcm   []int16
	rate  int
	flush bool
	gen   int // the clear generation it belongs to
}

// player plays the agent's audio at the speaker's pace: the agent sends
// a segment faster than real time, then a flush, and holds its turn until
// it is told the segment has been played. A clear (the agent was
// interrupted) drops what is queued; a pause (the agent stopped speaking
// without a clear: agents-js pauses its speech for a barge-in and says so
// only in its state) holds it until the agent speaks again or clears.
type player struct {
	spk      audio.Sink
	level    func(float64)
	hold     func() bool     // a local sound plays
	heard    func(time.Time) // audible audio reached the speaker
	finished func()          // a segment has been played
	mu       sync.Mutex
	queue    []item
	paused   bool
	open     bool // a segment is being played: audio came since the last finished or clear
	flushed  bool // the speaker was flushed: its queue is empty
	gen      int
	wake     chan struct{}
	rs       *audio.Resampler
	rsFrom   int
}

func newPlayer(spk audio.Sink) *player {
	return &player{spk: spk, wake: make(chan struct{}, 1)}
}

func (p *player) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *player) push(it item) {
	p.mu.Lock()
	it.gen = p.gen
	if !it.flush {
		p.open = true
	}
	p.queue = append(p.queue, it)
	p.mu.Unlock()
	p.signal()
}

// clear drops what is queued and silences the speaker.
func (p *player) clear() {
	p.mu.Lock()
	p.queue, p.paused, p.open, p.flushed = nil, false, false, true
	p.gen++
	p.mu.Unlock()
	p.spk.Flush()
	p.signal()
}

// pause holds the segment being played (what is queued, and what is
// still to come: the agent goes on sending while it pauses) and silences
// what the speaker holds, or resumes it; it reports whether it held.
func (p *player) pause(on bool) bool {
	p.mu.Lock()
	was := p.paused
	p.paused = on && (p.open || len(p.queue) > 0)
	held := p.paused && !was
	p.flushed = p.flushed || held
	p.mu.Unlock()
	if held {
		p.spk.Flush()
	}
	p.signal()
	return held
}

// pending reports whether audio waits to be played.
func (p *player) pending() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) > 0
}

// next takes the next item unless paused.
func (p *player) next() (item, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paused || len(p.queue) == 0 {
		return item{}, 0, false
	}
	it := p.queue[0]
	p.queue[0] = item{}
	p.queue = p.queue[1:]
	return it, p.gen, true
}

// endSegment: the segment of gen has been played; false when it was
// cleared meanwhile (nothing to answer).
func (p *player) endSegment(gen int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gen != gen {
		return false
	}
	p.open = false
	return true
}

// requeue decides, after a wait, about an item taken earlier: play it
// (true), drop it (cleared meanwhile), or put it back first (paused).
func (p *player) requeue(it item) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.gen != it.gen:
		return false
	case p.paused:
		p.queue = append([]item{it}, p.queue...)
		return false
	}
	return true
}

// lead is how far ahead of what is heard the player writes to the
// speaker: the speaker's own queue cannot be held back, so a pause would
// leave everything it holds playing over the user. What was written of
// it is lost at a pause (at most lead and a frame).
const lead = 120 * time.Millisecond

// run plays until ctx ends or the speaker fails (its error is returned).
func (p *player) run(ctx context.Context) error {
	var buf []int16
	var since time.Time       // the speaker has played since, without a gap
	var written time.Duration // written since then
	rate := p.spk.Format().SampleRate
	for {
		if p.takeFlushed() {
			since, written = time.Time{}, 0
		}
		if !since.IsZero() {
			if ahead := written - time.Since(since); ahead < 0 {
				since, written = time.Time{}, 0 // it ran dry
			} else if ahead > lead {
				select {
				case <-ctx.Done():
					return nil
				case <-p.wake:
				case <-time.After(min(ahead-lead, 20*time.Millisecond)):
				}
				continue
			}
		}
		it, gen, ok := p.next()
		if !ok {
			select {
			case <-ctx.Done():
				return nil
			case <-p.wake:
			}
			continue
		}
		if it.gen != gen {
			continue // cleared
		}
		if it.flush {
			if err := p.spk.Drain(ctx); err != nil && ctx.Err() != nil {
				return nil
			}
			if p.endSegment(it.gen) {
				p.finished()
			}
			continue
		}
		pcm := it.pcm
		if rate != it.rate {
			if p.rs == nil || p.rsFrom != it.rate {
				p.rs, _ = audio.NewResampler(it.rate, rate)
				p.rsFrom = it.rate
			}
			if p.rs == nil {
				continue // no way to play it at this rate: silence, not noise
			}
			buf = p.rs.Process(buf[:0], pcm)
			pcm = buf
		}
		for start := time.Now(); p.hold() && time.Since(start) < holdMax; {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		if !p.requeue(it) {
			continue // cleared or paused while a local sound held it
		}
		db := audio.RMS(pcm)
		if p.level != nil {
			p.level(db)
		}
		if db > audibleDBFS {
			p.heard(time.Now())
		}
		if since.IsZero() {
			since = time.Now()
		}
		written += time.Duration(len(pcm)) * time.Second / time.Duration(rate)
		if _, err := p.spk.Write(ctx, pcm); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// takeFlushed reports whether the speaker was flushed since last asked.
func (p *player) takeFlushed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.flushed
	p.flushed = false
	return f
}
