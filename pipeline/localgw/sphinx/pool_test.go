package sphinx_test

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

// newPool is a pool closed when the test ends.
func newPool(t *testing.T, cfg sphinx.Config, size int) *sphinx.Pool {
	t.Helper()
	p := sphinx.NewPool(cfg, size)
	t.Cleanup(func() { p.Close() })
	return p
}

func get(t *testing.T, p *sphinx.Pool) *sphinx.Decoder {
	t.Helper()
	d, err := p.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Warm loads ahead, so Get lends at once, and Put keeps the decoder for
// the next Get.
func TestPoolWarmGetPut(t *testing.T) {
	requireSphinx(t)
	p := newPool(t, sphinx.Config{}, 2)
	if err := p.Warm(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := p.Warm(t.Context()); err != nil { // one is idle: loads nothing
		t.Fatal(err)
	}
	start := time.Now()
	d := get(t, p)
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Errorf("Get after Warm took %v: it loaded instead of lending", took)
	}
	p.Put(d)
	if again := get(t, p); again != d {
		t.Error("Get after Put made a new decoder instead of lending the idle one")
	} else {
		p.Put(again)
	}
}

// Put ends an open utterance: the next user starts clean.
func TestPoolPutEndsUtterance(t *testing.T) {
	requireSphinx(t)
	v := espeakVoice(t)
	p := newPool(t, sphinx.Config{}, 1)
	d := get(t, p)
	half := utterance(v.speak(t, "open the front door"))
	if err := d.Write(half[:len(half)/2]); err != nil {
		t.Fatal(err)
	}
	p.Put(d)
	d = get(t, p)
	defer p.Put(d)
	if s, err := d.Partial(); s != "" || err != nil {
		t.Errorf("Partial of a decoder fresh from the pool: %q, %v; want no utterance", s, err)
	}
	if s := recognize(t, d, utterance(v.speak(t, "play some music"))); s == "" {
		t.Error("the reused decoder recognised nothing")
	}
}

// size bounds the decoders: Get waits for a Put, or for its context.
func TestPoolBound(t *testing.T) {
	requireSphinx(t)
	p := newPool(t, sphinx.Config{}, 1)
	d := get(t, p)
	if err := p.Warm(t.Context()); err != nil { // full: loads nothing
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := p.Get(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get beyond size: %v, want the context's deadline", err)
	}
	got := make(chan *sphinx.Decoder)
	go func() {
		d, err := p.Get(context.Background())
		if err != nil {
			t.Error(err)
		}
		got <- d
	}()
	time.Sleep(50 * time.Millisecond)
	p.Put(d)
	select {
	case d2 := <-got:
		if d2 != d {
			t.Error("the waiting Get did not get the decoder put back")
		}
		p.Put(d2)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Get was not woken by Put")
	}
}

func TestPoolClose(t *testing.T) {
	requireSphinx(t)
	p := sphinx.NewPool(sphinx.Config{}, 1)
	d := get(t, p)
	waiting := make(chan error)
	go func() {
		_, err := p.Get(context.Background())
		waiting <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-waiting; !errors.Is(err, sphinx.ErrPoolClosed) {
		t.Errorf("waiting Get: %v, want ErrPoolClosed", err)
	}
	if _, err := p.Get(context.Background()); !errors.Is(err, sphinx.ErrPoolClosed) {
		t.Errorf("Get after Close: %v, want ErrPoolClosed", err)
	}
	if err := p.Warm(context.Background()); !errors.Is(err, sphinx.ErrPoolClosed) {
		t.Errorf("Warm after Close: %v, want ErrPoolClosed", err)
	}
	p.Put(d) // closes it
	if err := d.Write(make([]int16, chunk)); !errors.Is(err, sphinx.ErrClosed) {
		t.Errorf("decoder put back after Close: Write %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	p.Put(nil)
}

// A decoder the pool did not lend is closed by Put, not adopted.
func TestPoolPutForeign(t *testing.T) {
	requireSphinx(t)
	p := newPool(t, sphinx.Config{}, 1)
	d, err := sphinx.New(sphinx.Config{})
	if err != nil {
		t.Fatal(err)
	}
	p.Put(d)
	if err := d.Write(make([]int16, chunk)); !errors.Is(err, sphinx.ErrClosed) {
		t.Errorf("foreign decoder after Put: Write %v, want ErrClosed", err)
	}
	p.Put(get(t, p)) // its slot is still free
}

// A configuration that cannot load fails Warm and Get alike, and frees
// the slot each time (a size-1 pool would otherwise block).
func TestPoolLoadError(t *testing.T) {
	requireSphinx(t)
	p := newPool(t, sphinx.Config{HMM: "/nonexistent/hmm"}, 1)
	if err := p.Warm(t.Context()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Warm: %v, want fs.ErrNotExist", err)
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		_, err := p.Get(ctx)
		cancel()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Get: %v, want fs.ErrNotExist", err)
		}
	}
}

// Many sockets on a small pool: each Get is served, never more than size
// decoders exist, and every utterance is recognised.
func TestPoolConcurrent(t *testing.T) {
	requireSphinx(t)
	v := espeakVoice(t)
	pcm := utterance(v.speak(t, "thank you very much"))
	p := newPool(t, sphinx.Config{}, 2)
	var (
		mu      sync.Mutex
		lent    int
		maxLent int
		maxLive int
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for range 2 {
				d, err := p.Get(t.Context())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				lent++
				maxLent = max(maxLent, lent)
				maxLive = max(maxLive, p.Live())
				mu.Unlock()
				s, err := decode(d, pcm)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				lent--
				mu.Unlock()
				p.Put(d)
				if s == "" {
					t.Error("recognised nothing")
				}
			}
		})
	}
	wg.Wait()
	if maxLive > 2 || maxLent > 2 {
		t.Errorf("%d decoders alive, %d lent at once; size is 2", maxLive, maxLent)
	}
	if n := p.Live(); n != 1 {
		t.Errorf("%d decoders kept once all are back, want 1", n)
	}
}

// A second decoder is loaded only while two are lent, and closed when it
// comes back to a pool that has one idle.
func TestPoolKeepsOneIdle(t *testing.T) {
	requireSphinx(t)
	p := newPool(t, sphinx.Config{}, 2)
	if n := p.Live(); n != 0 {
		t.Fatalf("a new pool has %d decoders, want none", n)
	}
	a, b := get(t, p), get(t, p)
	if n := p.Live(); n != 2 {
		t.Fatalf("%d decoders with two lent, want 2", n)
	}
	p.Put(a)
	p.Put(b)
	if n := p.Live(); n != 1 {
		t.Fatalf("%d decoders once both are back, want 1", n)
	}
	if err := b.Write(make([]int16, chunk)); !errors.Is(err, sphinx.ErrClosed) {
		t.Errorf("the second decoder given back: Write %v, want ErrClosed", err)
	}
	if d := get(t, p); d != a {
		t.Error("Get did not lend the idle decoder")
	} else {
		p.Put(d)
	}
}
