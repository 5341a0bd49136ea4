package audio

import "sync"

// Ring is a fixed-size FIFO of samples, safe for one writer, one reader and
// any number of Reset callers. Neither side ever waits on the other: Write
// takes what fits, Read takes what is there. Both hold a mutex for a copy
// only, so a device callback can call Read without risking a stall.
type Ring struct {
	mu   sync.Mutex
	buf  []int16
	head int // index of the oldest sample
	size int // samples stored
}

// NewRing returns a ring that holds up to capacity samples.
func NewRing(capacity int) *Ring {
	if capacity < 1 {
		capacity = 1
	}
	return &Ring{buf: make([]int16, capacity)}
}

// Cap is the ring's capacity in samples.
func (r *Ring) Cap() int { return len(r.buf) }

// Len is the number of samples waiting to be read.
func (r *Ring) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.size
}

// Write appends as much of p as fits and returns how many samples it took.
func (r *Ring) Write(p []int16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(len(p), len(r.buf)-r.size)
	tail := (r.head + r.size) % len(r.buf)
	c := copy(r.buf[tail:], p[:n])
	copy(r.buf, p[c:n])
	r.size += n
	return n
}

// Read moves up to len(p) samples into p and returns how many it moved.
func (r *Ring) Read(p []int16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := min(len(p), r.size)
	c := copy(p[:n], r.buf[r.head:min(r.head+n, len(r.buf))])
	copy(p[c:n], r.buf)
	r.head = (r.head + n) % len(r.buf)
	r.size -= n
	return n
}

// Reset drops everything queued.
func (r *Ring) Reset() {
	r.mu.Lock()
	r.head, r.size = 0, 0
	r.mu.Unlock()
}
