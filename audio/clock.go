package audio

import (
	"context"
	"sync"
	"time"
)

// ClockSink is a speaker without a device: it plays its queue at real-time
// pace, silence when the queue is empty, and hands every period it plays
// to record. Headless runs use it as the speaker, so a recording of it is
// what a listener would have heard, on the listener's timeline: speech,
// the silence between, and speech cut off by Flush.
type ClockSink struct {
	format Format
	record func([]int16) error
	period int // samples per tick
	queue  int // samples Write may queue

	mu      sync.Mutex
	ring    *Ring
	changed chan struct{} // closed and replaced when the queue shrinks
	err     error         // record's failure
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewClockSink starts a clock at f's rate; record receives each 20 ms
// played (it may be nil). Up to 30 s may be queued.
func NewClockSink(f Format, record func([]int16) error) (*ClockSink, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	s := &ClockSink{format: f, record: record, period: f.SampleRate / 50 * f.Channels, queue: 30 * f.SampleRate * f.Channels,
		ring: NewRing(30 * f.SampleRate * f.Channels), changed: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

func (s *ClockSink) run() {
	defer close(s.done)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	played := 0 // periods
	buf := make([]int16, s.period)
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			// Catch up on late ticks so the timeline does not drift.
			for due := int(now.Sub(start) / (20 * time.Millisecond)); played < due; played++ {
				s.mu.Lock()
				n := s.ring.Read(buf)
				if n > 0 {
					close(s.changed)
					s.changed = make(chan struct{})
				}
				s.mu.Unlock()
				clear(buf[n:])
				if s.record != nil {
					if err := s.record(buf); err != nil {
						s.mu.Lock()
						s.err = err
						s.mu.Unlock()
						return
					}
				}
			}
		}
	}
}

func (s *ClockSink) Format() Format { return s.format }

// Write queues p, waiting while the queue is full.
func (s *ClockSink) Write(ctx context.Context, p []int16) (int, error) {
	total := 0
	for len(p) > 0 {
		select {
		case <-s.done:
			return total, ErrClosed
		default:
		}
		if err := ctx.Err(); err != nil {
			return total, err // a cancelled reply must not slip in after a Flush
		}
		s.mu.Lock()
		if s.err != nil {
			err := s.err
			s.mu.Unlock()
			return total, err
		}
		n := s.ring.Write(p)
		changed := s.changed
		s.mu.Unlock()
		total += n
		p = p[n:]
		if len(p) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-s.done:
			return total, ErrClosed
		case <-changed:
		}
	}
	return total, nil
}

// Flush drops the queue: silence from the next period.
func (s *ClockSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring.Reset()
	close(s.changed)
	s.changed = make(chan struct{})
}

// Drain waits until the queue has been played.
func (s *ClockSink) Drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		empty, changed, err := s.ring.Len() == 0, s.changed, s.err
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrClosed
		case <-changed:
		}
	}
}

// Queued is how much audio waits to be played.
func (s *ClockSink) Queued() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Duration(s.ring.Len()/s.format.Channels) * time.Second / time.Duration(s.format.SampleRate)
}

// Close stops the clock; queued audio is dropped.
func (s *ClockSink) Close() error {
	s.once.Do(func() { close(s.stop) })
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}
