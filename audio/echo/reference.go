// Package echo cancels the speaker's echo in the microphone's signal
// (acoustic echo cancellation), so the user can talk over the agent on
// laptop speakers without the agent hearing itself.
//
// A speaker reports what it hands its device to a Reference (it is an
// audio.Monitor); a Source wraps the microphone and subtracts what the
// Reference says played. Both sit on one timeline: sample positions at
// 16 kHz counted by the wall clock from the Reference's creation, each
// stream counted sample by sample while it runs (a device keeps its own
// pace) and placed by the clock only when it starts. What is left between
// them (the device buffers, the sound server, the air) is measured by
// cross-correlation (delay.go); the canceller (WebRTC's) models the room.
package echo

import (
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// rate is the timeline's: the microphone's (audio.Pipeline).
const rate = audio.PipelineRate

// Timeline tuning.
const (
	// refKeep is how much played audio the reference keeps: the longest
	// delay searched and the estimator's window, with room to spare.
	refKeep = 4 * rate
	// restartGap: a speaker whose audio arrives this much later than its
	// count says has paused (a suspended device): it is placed anew.
	restartGap = rate / 10
)

// Reference is what the speaker played, on the timeline. It implements
// audio.Monitor; it is safe for one writer (the speaker) and readers.
type Reference struct {
	epoch time.Time

	mu     sync.Mutex
	ring   []int16
	next   int64 // position of the next sample played; -1 before the first
	rs     *audio.Resampler
	rsRate int
	buf    []int16
	run    int64 // runs of the device: counted at each start
	loud   int64 // position after the last chunk played above activeLevel
	first  int64 // position of the run's first chunk above it; -1 before
}

var _ audio.Monitor = (*Reference)(nil)

// NewReference starts the timeline now.
func NewReference() *Reference {
	return &Reference{epoch: time.Now(), ring: make([]int16, refKeep), next: -1, first: -1}
}

// position is t on the timeline.
func (r *Reference) position(t time.Time) int64 {
	return int64(t.Sub(r.epoch)) * rate / int64(time.Second)
}

// Played places p on the timeline.
func (r *Reference) Played(p []int16, prate int, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.rs == nil || r.rsRate != prate {
		rs, err := audio.NewResampler(prate, rate)
		if err != nil {
			return // not a rate a device has
		}
		r.rs, r.rsRate = rs, prate
	}
	now := r.position(at)
	if r.next < 0 || now > r.next+restartGap {
		// The device starts (again): silence since it stopped.
		r.rs.Reset()
		r.run++
		r.first = -1
		r.zero(r.next, now)
		r.next = now
	}
	r.buf = r.rs.Process(r.buf[:0], p)
	for src, pos := r.buf, r.next; len(src) > 0; {
		n := copy(r.ring[index(pos):], src) // up to the ring's end
		src, pos = src[n:], pos+int64(n)
	}
	r.next += int64(len(r.buf))
	if len(r.buf) > 0 && audio.RMS(r.buf) > activeLevel {
		if r.first < 0 {
			r.first = r.next - int64(len(r.buf))
		}
		r.loud = r.next
	}
}

// runs counts the device's starts: each is placed on the timeline anew.
// firstLoud is where the run's first sound was played (-1: none yet),
// lastLoud the position after the last sound played.
func (r *Reference) runs() (run, firstLoud, lastLoud int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.run, r.first, r.loud
}

// Unplayed takes back the last n samples (at the speaker's rate): they
// were dropped before they reached the device.
func (r *Reference) Unplayed(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next < 0 || r.rsRate == 0 {
		return
	}
	m := int64(n) * rate / int64(r.rsRate)
	r.zero(r.next-m, r.next)
	r.next -= m
}

// zero silences [from, to), as far as the ring reaches.
func (r *Reference) zero(from, to int64) {
	from = max(from, to-refKeep)
	if r.next < 0 {
		from = to // nothing played yet: the ring is silent
	}
	for from < to {
		i := index(from)
		n := min(to-from, refKeep-i) // up to the ring's end
		clear(r.ring[i : i+n])
		from += n
	}
}

// read copies the samples at positions [pos, pos+len(dst)) into dst:
// silence where nothing played or what played is no longer kept. It
// copies spans of the ring, not sample by sample: the speaker's reader
// waits for the same lock.
func (r *Reference) read(pos int64, dst []int16) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(dst)
	if r.next < 0 {
		return
	}
	// What is kept: [next-refKeep, next).
	from, to := max(pos, r.next-refKeep), min(pos+int64(len(dst)), r.next)
	for from < to {
		i := index(from)
		n := min(to-from, refKeep-i) // up to the ring's end
		copy(dst[from-pos:], r.ring[i:i+n])
		from += n
	}
}

// index is position p in the ring (p may be negative: a clock read just
// before the reference was made).
func index(p int64) int64 { return (p%refKeep + refKeep) % refKeep }
