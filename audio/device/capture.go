package device

/*
#cgo pkg-config: portaudio-2.0
#include "stream.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/gordonklaus/portaudio"

	"github.com/voicetui/voicetui/audio"
)

// CaptureOptions tune OpenCapture. The zero value captures from the
// default device in the pipeline format.
type CaptureOptions struct {
	Device string        // selector: "" (default), an index, or a name substring
	Format audio.Format  // what Read returns; mono only. Default audio.Pipeline
	Buffer time.Duration // audio per callback; default 60 ms: each callback wakes the process, which costs more idle CPU than the 40 ms it saves in latency
	Queue  time.Duration // audio held for a slow reader before overflowing; default 2 s
	Stall  time.Duration // no audio from the device for this long is an error; default 2 s
}

// Capture is a microphone Source. PortAudio's callback (C, stream.h)
// copies each buffer into a ring, downmixed to mono, and never waits;
// Read takes it from the ring and resamples to the requested format.
type Capture struct {
	info    Info
	format  audio.Format
	devRate int
	cs      *C.vt_capture   // set at open; freed by Close once no Read is in the ring
	ring    []int16         // the callback's ring (C memory)
	wake    *os.File        // the callback's wakes (stream.h), in the network poller
	wakes   syscall.RawConn // waits on wake without reading it
	release func()

	once    sync.Once
	closing atomic.Bool // Close has begun: Read returns
	mu      sync.Mutex  // guards closed against Overflows
	closed  bool

	// Reader side.
	rs      *audio.Resampler
	raw     []int16
	out     []int16
	watched <-chan struct{} // the Done of the context Read last saw
	unwatch func() bool     // under mu: Close ends it too

	stall time.Duration

	overflows, dropped int64 // Overflows after Close
}

// OpenCapture opens and starts the selected input device. It fails with an
// *audio.DeviceError naming the device when it is missing or won't open.
func OpenCapture(opts *CaptureOptions) (*Capture, error) {
	var o CaptureOptions
	if opts != nil {
		o = *opts
	}
	if o.Format == (audio.Format{}) {
		o.Format = audio.Pipeline
	}
	if o.Buffer <= 0 {
		o.Buffer = 60 * time.Millisecond
	}
	if o.Stall <= 0 {
		o.Stall = 2 * time.Second
	}
	if o.Queue <= 0 {
		o.Queue = 2 * time.Second
	}
	if o.Format.Channels != 1 {
		return nil, &audio.DeviceError{Direction: "input", Device: o.Device, Op: "open", Err: errMono}
	}
	release, err := Init()
	if err != nil {
		return nil, &audio.DeviceError{Direction: "input", Device: o.Device, Op: "open", Err: err}
	}
	c, err := openCapture(o)
	if err != nil {
		release()
		return nil, err
	}
	c.release = release
	return c, nil
}

func openCapture(o CaptureOptions) (*Capture, error) {
	devs, err := List()
	if err != nil {
		return nil, &audio.DeviceError{Direction: "input", Device: o.Device, Op: "list", Err: err}
	}
	info, err := Resolve(devs, Input, o.Device)
	if err != nil {
		return nil, err
	}
	fail := func(op string, err error) (*Capture, error) {
		return nil, &audio.DeviceError{Direction: "input", Device: info.Name, Op: op, Err: paError(err)}
	}
	pa, err := lookup(info.Index)
	if err != nil {
		return fail("open", err)
	}
	// Ask for the wanted rate in mono; fall back to what the device offers
	// and convert here.
	params := portaudio.LowLatencyParameters(pa, nil)
	params.Input.Channels = 1
	params.SampleRate = float64(o.Format.SampleRate)
	if portaudio.IsFormatSupported(params, []int16{}) != nil {
		params.Input.Channels = min(2, pa.MaxInputChannels)
		params.SampleRate = pa.DefaultSampleRate
		if err := portaudio.IsFormatSupported(params, []int16{}); err != nil {
			return fail("open", err)
		}
	}
	c := &Capture{
		info:    info,
		format:  o.Format,
		devRate: int(params.SampleRate),
		stall:   o.Stall,
	}
	if c.rs, err = audio.NewResampler(c.devRate, o.Format.SampleRate); err != nil {
		return fail("open", err)
	}
	mono := audio.Format{SampleRate: c.devRate, Channels: 1}
	var code, sys C.int
	c.cs = C.vt_capture_open(C.int(pa.Index), C.int(params.Input.Channels), C.double(params.SampleRate),
		C.double(params.Input.Latency.Seconds()), C.ulong(mono.Samples(o.Buffer)), C.uint64_t(mono.Samples(o.Queue)), &code, &sys)
	if c.cs == nil {
		if sys != 0 {
			return fail("open", fmt.Errorf("a descriptor for the capture's wakes: %w", syscall.Errno(sys)))
		}
		return fail("open", portaudio.Error(code))
	}
	c.ring = unsafe.Slice((*int16)(unsafe.Pointer(c.cs.ring)), int(c.cs.size))
	// The wake descriptor goes to the network poller (it is non-blocking):
	// waiting for audio blocks no thread and makes no system call.
	c.wake = os.NewFile(uintptr(c.cs.wake[0]), "capture wake")
	if c.wakes, err = c.wake.SyscallConn(); err == nil {
		err = portaudio.Error(C.Pa_StartStream(c.cs.stream))
		if err == portaudio.Error(C.paNoError) {
			err = nil
		}
	}
	if err != nil {
		C.vt_capture_stop(c.cs)
		c.wake.Close()
		C.vt_capture_free(c.cs)
		return fail("start", err)
	}
	return c, nil
}

func lookup(index int) (*portaudio.DeviceInfo, error) {
	devs, err := portaudio.Devices()
	if err != nil {
		return nil, err
	}
	for _, d := range devs {
		if d.Index == index {
			return d, nil
		}
	}
	return nil, audio.ErrUnknownDevice
}

// Info is the device being captured.
func (c *Capture) Info() Info { return c.info }

// DeviceRate is the rate the device runs at (Read converts from it).
func (c *Capture) DeviceRate() int { return c.devRate }

// Format is what Read returns.
func (c *Capture) Format() audio.Format { return c.format }

// Overflows reports input overflow: buffers the device flagged and samples
// dropped because the reader fell behind. Neither stops the capture.
func (c *Capture) Overflows() (deviceBuffers, droppedSamples int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return c.overflows, c.dropped
	}
	var dev, drop C.int64_t
	C.vt_capture_overflows(c.cs, &dev, &drop)
	return int64(dev), int64(drop)
}

// The ring's shared fields, read and written with atomics (stream.h's
// __atomic operations are sequentially consistent on the other side).
func (c *Capture) written() *uint64 { return (*uint64)(unsafe.Pointer(&c.cs.w)) }
func (c *Capture) taken() *uint64   { return (*uint64)(unsafe.Pointer(&c.cs.r)) }
func (c *Capture) waiting() *int32  { return (*int32)(unsafe.Pointer(&c.cs.waiting)) }
func (c *Capture) lastNs() *int64   { return (*int64)(unsafe.Pointer(&c.cs.last_ns)) }

// take moves what the callback has captured to p (mono, at the device's
// rate); with nothing there it returns 0 and asks the callback for a wake.
// Only while the wake descriptor is held (inside wakes.Read): Close frees
// the ring once it can close the descriptor.
func (c *Capture) take(p []int16) int {
	r := atomic.LoadUint64(c.taken())
	w := atomic.LoadUint64(c.written())
	if w == r {
		atomic.StoreInt32(c.waiting(), 1)
		// Written between the two loads: the wake may have been missed.
		if w = atomic.LoadUint64(c.written()); w == r {
			return 0
		}
	}
	k := min(w-r, uint64(len(p)))
	size := uint64(len(c.ring))
	start := r % size
	n := copy(p[:k], c.ring[start:])
	copy(p[n:k], c.ring)
	atomic.StoreUint64(c.taken(), r+k)
	return int(k)
}

// Read blocks until audio is available and returns it in Format. A device
// that stops delivering (unplugged, suspended, a dead sound server) gives
// an *audio.DeviceError after the Stall time rather than a silent wait.
// Audio already captured is returned before a cancellation or Close is.
func (c *Capture) Read(ctx context.Context, p []int16) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.watch(ctx)
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[:copy(c.out, c.out[n:])]
			return n, nil
		}
		if cap(c.raw) < len(p) {
			c.raw = make([]int16, len(p))
		}
		raw := c.raw[:len(p)]
		// A deadline that has passed would end the wait before the ring
		// is looked at: none until the ring is found empty.
		if err := c.wake.SetReadDeadline(time.Time{}); err != nil {
			return 0, c.closedOr(err)
		}
		var n int
		var quiet time.Duration
		var stop error
		err := c.wakes.Read(func(fd uintptr) bool {
			drainWake(fd)
			if n = c.take(raw); n > 0 {
				return true
			}
			last := time.Unix(0, atomic.LoadInt64(c.lastNs()))
			if quiet = time.Since(last); quiet >= c.stall {
				return true
			}
			// The stall watchdog is the descriptor's deadline; a
			// cancellation or Close moves it to the past (watch,
			// Close). Set first, then look: one in between still
			// ends the wait.
			c.wake.SetReadDeadline(last.Add(c.stall))
			if c.closing.Load() {
				stop = audio.ErrClosed
			} else {
				stop = ctx.Err()
			}
			return stop != nil
		})
		switch {
		case err == nil && n > 0:
			c.out = c.rs.Process(c.out[:0], raw[:n])
		case err == nil && stop != nil:
			return 0, c.closedOr(stop)
		case err == nil:
			return 0, &audio.DeviceError{Direction: "input", Device: c.info.Name, Op: "read",
				Err: fmt.Errorf("%w: no audio for %s", ErrStalled, quiet.Round(100*time.Millisecond))}
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The watchdog, a cancellation or Close: the loop looks.
		default:
			return 0, c.closedOr(err)
		}
	}
}

// watch makes the cancellation of ctx end a wait in Read.
func (c *Capture) watch(ctx context.Context) {
	done := ctx.Done()
	if done == c.watched {
		return
	}
	c.watched = done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unwatch != nil {
		c.unwatch()
		c.unwatch = nil
	}
	if done != nil && !c.closed {
		c.unwatch = context.AfterFunc(ctx, func() { c.wake.SetReadDeadline(time.Unix(1, 0)) })
	}
}

// closedOr is audio.ErrClosed once Close has begun (the wake descriptor's
// own errors then are internal/poll's), else err.
func (c *Capture) closedOr(err error) error {
	if c.closing.Load() {
		return audio.ErrClosed
	}
	return err
}

// Close stops the stream; it is idempotent.
func (c *Capture) Close() error {
	var err error
	c.once.Do(func() {
		// A waiting Read returns now, not after the stream has stopped.
		c.closing.Store(true)
		c.wake.SetReadDeadline(time.Unix(1, 0))
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.unwatch != nil {
			c.unwatch() // a context that outlives the capture keeps no hold on it
			c.unwatch = nil
		}
		// The callback has returned for good once the stream is closed:
		// only then may the descriptor it writes to go.
		if e := portaudio.Error(C.vt_capture_stop(c.cs)); e != portaudio.Error(C.paNoError) {
			err = paError(e)
		}
		var dev, drop C.int64_t
		C.vt_capture_overflows(c.cs, &dev, &drop)
		c.overflows, c.dropped = int64(dev), int64(drop)
		c.closed = true
		// Returns once no Read is in the ring (os.File's Close waits for
		// the descriptor's users); then the ring can go.
		c.wake.Close()
		C.vt_capture_free(c.cs)
		c.release()
	})
	return err
}
