package sphinx

import (
	"context"
	"fmt"
	"os"
	"sync"
)

// Pool lends loaded decoders, so that only the first utterance waits for
// a model load (about 150 ms for the default model), and bounds how many
// exist, since each default-model decoder holds about 21 MB: at most size
// decoders live at a time, idle, lent or loading.
//
// A gateway makes one pool, prepares it in the background at start (the
// compact model's files, no decoder: see Prepare), and around each
// utterance calls Get and Put, starting the Get as the voice starts so
// that a load overlaps the speech:
//
//	pool := sphinx.NewPool(sphinx.Config{}, 2)
//	defer pool.Close()
//	wg.Go(func() { prepErr = pool.Prepare() })
//	...
//	d, err := pool.Get(ctx) // loads, or waits while size decoders are lent
//	defer pool.Put(d)
//
// One idle decoder is kept until Close: one user talking costs one
// decoder, loaded once, at the first utterance. A second is loaded only
// for utterances that overlap, and closed when it is given back while the
// other is idle.
type Pool struct {
	slots chan struct{} // a token per live decoder: the memory bound
	idle  chan *Decoder // loaded, no utterance open; capacity size
	done  chan struct{} // closed by Close: wakes Get

	mu      sync.Mutex
	cfg     Config // Prepare may point it at its files
	temp    string // a compact model of Prepare's own, removed by Close
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
		d, err := New(p.config())
		if err != nil {
			<-p.slots
			return nil, err
		}
		return p.lend(d)
	}
}

// Live is how many decoders exist: idle, lent or loading.
func (p *Pool) Live() int { return len(p.slots) }

func (p *Pool) config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// Prepare makes ahead what a load needs and can have without a decoder's
// memory: the compact model's files (Config.Vocabulary), derived the first
// time (about half a second, a few MB while it runs) and then found in the
// cache. It loads no decoder: run it at start, in the background of the
// caller's choosing, so that the first Get loads in about 150 ms. Its
// error: a missing model file (wrapping ErrUnavailable when the default
// model is not installed), or why the compact model could not be made,
// in which case the pool loads the full model (about 95 MB a decoder);
// ErrPoolClosed after Close.
func (p *Pool) Prepare() error {
	cfg := p.config()
	cfg, err := cfg.check()
	if err != nil {
		return err
	}
	f, ok, err := cfg.compact()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		if f.temp != "" {
			os.RemoveAll(f.temp)
		}
		return ErrPoolClosed
	}
	switch {
	case err != nil:
		p.cfg.Vocabulary = -1 // no load tries again
		return fmt.Errorf("sphinx: compact model: %w", err)
	case ok && f.temp != "":
		// No cache: this copy serves the pool's loads until Close.
		if p.temp != "" {
			os.RemoveAll(p.temp)
		}
		p.cfg.LM, p.cfg.Dict, p.cfg.Vocabulary, p.temp = f.lm, f.dict, -1, f.temp
	}
	return nil
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

	d, err := New(p.config())
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

// keep makes d idle, or closes it when the pool is closed or another
// decoder is idle already (d was loaded for an overlap that is over).
func (p *Pool) keep(d *Decoder) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) > 0 {
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
	if p.temp != "" {
		os.RemoveAll(p.temp) // the decoders have read it
		p.temp = ""
	}
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
