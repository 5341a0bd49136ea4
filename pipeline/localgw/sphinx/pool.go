package sphinx

import (
	"context"
	"sync"
)

// Pool lends loaded decoders so that a new STT stream starts at once
// instead of after a model load (about 270 ms for the default model), and
// bounds how many exist, since each default-model decoder holds about 95 MB:
// at most size decoders live at a time, idle, lent or loading.
//
// A gateway makes one pool, warms it in the background at start (Warm
// fails with ErrUnavailable when recognition cannot run, which is when to
// fall back to the energy detector), and around each STT socket calls Get
// and Put:
//
//	pool := sphinx.NewPool(sphinx.Config{}, 2)
//	defer pool.Close()
//	wg.Go(func() { warmErr = pool.Warm(ctx) })
//	...
//	d, err := pool.Get(ctx) // waits while size decoders are lent
//	defer pool.Put(d)
//
// Idle decoders are kept until Close: one user talking through one socket
// at a time costs one decoder, loaded once.
type Pool struct {
	cfg   Config
	slots chan struct{} // a token per live decoder: the memory bound
	idle  chan *Decoder // loaded, no utterance open; capacity size
	done  chan struct{} // closed by Close: wakes Get

	mu      sync.Mutex
	closed  bool
	loading int // Warm loads in progress
	lent    map[*Decoder]struct{}
}

// NewPool returns an empty pool of at most size decoders (at least 1)
// made with cfg. It loads nothing: Warm or Get do.
func NewPool(cfg Config, size int) *Pool {
	size = max(size, 1)
	return &Pool{
		cfg:   cfg,
		slots: make(chan struct{}, size),
		idle:  make(chan *Decoder, size),
		done:  make(chan struct{}),
		lent:  map[*Decoder]struct{}{},
	}
}

// Get lends an idle decoder, or loads one when fewer than size exist, or
// waits for a Put until ctx ends. A load, once begun, is not interrupted
// by ctx (the library cannot stop it): Get returns when it ends. Errors:
// ErrPoolClosed, ctx's cause, or New's error (ErrUnavailable when the
// library or model is missing).
func (p *Pool) Get(ctx context.Context) (*Decoder, error) {
	select {
	case <-p.done:
		return nil, ErrPoolClosed
	case d := <-p.idle: // a ready decoder first, without waiting
		return p.lend(d)
	default:
	}
	select {
	case <-p.done:
		return nil, ErrPoolClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	case d := <-p.idle:
		return p.lend(d)
	case p.slots <- struct{}{}:
		d, err := New(p.cfg)
		if err != nil {
			<-p.slots
			return nil, err
		}
		return p.lend(d)
	}
}

func (p *Pool) lend(d *Decoder) (*Decoder, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.discard(d)
		return nil, ErrPoolClosed
	}
	p.lent[d] = struct{}{}
	p.mu.Unlock()
	return d, nil
}

// Put gives back a decoder from Get. An open utterance is ended and its
// text dropped (End's time: tens of milliseconds); a decoder whose
// library call failed, or one given back after Close, is closed instead
// of kept. Put takes ownership: a decoder the pool did not lend is
// closed. Put(nil) does nothing.
func (p *Pool) Put(d *Decoder) {
	if d == nil {
		return
	}
	p.mu.Lock()
	_, ours := p.lent[d]
	delete(p.lent, d)
	p.mu.Unlock()
	if !ours {
		d.Close()
		return
	}
	if !d.reset() {
		p.discard(d)
		return
	}
	p.keep(d)
}

// Warm loads one decoder in the background of the caller's choosing,
// unless one is idle or loading already, or size decoders exist: run it
// at gateway start so the first STT socket does not wait, and again after
// a Get to keep one ready for the next. Its error says why recognition
// cannot run (wrapping ErrUnavailable when the library or model is
// missing); ErrPoolClosed after Close; ctx's cause when ctx ended before
// the load began.
func (p *Pool) Warm(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrPoolClosed
	}
	if len(p.idle)+p.loading > 0 {
		p.mu.Unlock()
		return nil
	}
	select {
	case p.slots <- struct{}{}:
	default: // size decoders exist: the bound wins
		p.mu.Unlock()
		return nil
	}
	p.loading++
	p.mu.Unlock()

	d, err := New(p.cfg)
	p.mu.Lock()
	p.loading--
	p.mu.Unlock()
	if err != nil {
		<-p.slots
		return err
	}
	p.keep(d)
	return nil
}

// keep makes d idle, or closes it when the pool is closed.
func (p *Pool) keep(d *Decoder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		d.Close()
		<-p.slots
		return
	}
	p.idle <- d // never blocks: at most size decoders exist
}

// discard closes d and frees its slot.
func (p *Pool) discard(d *Decoder) {
	d.Close()
	<-p.slots
}

// Close closes the idle decoders, wakes waiting Gets with ErrPoolClosed
// and makes Put close what it gets back. A load in progress is closed when
// it ends. Close may be called again.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	// No decoder becomes idle once closed is set (keep checks it under mu).
	for {
		select {
		case d := <-p.idle:
			p.discard(d)
		default:
			return nil
		}
	}
}
