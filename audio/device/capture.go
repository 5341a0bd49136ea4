package device

/*
#cgo pkg-config: portaudio-2.0
#include "stream.h"
*/
import "C"

import (
	"context"
	"fmt"
	"os"
	"sync"
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
// Read resamples to the requested format.
type Capture struct {
	info    Info
	format  audio.Format
	devRate int
	stream  *C.vt_capture
	wake    *os.File // the callback's wakes (stream.h)
	release func()

	ready  chan struct{}
	closed chan struct{}
	woken  chan struct{} // closed when the wake reader has returned
	once   sync.Once
	mu     sync.Mutex // guards stream against Close while it is read

	// Reader side.
	rs  *audio.Resampler
	raw []int16
	out []int16

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
		ready:   make(chan struct{}, 1),
		closed:  make(chan struct{}),
		woken:   make(chan struct{}),
		stall:   o.Stall,
	}
	if c.rs, err = audio.NewResampler(c.devRate, o.Format.SampleRate); err != nil {
		return fail("open", err)
	}
	mono := audio.Format{SampleRate: c.devRate, Channels: 1}
	var code, sys C.int
	c.stream = C.vt_capture_open(C.int(pa.Index), C.int(params.Input.Channels), C.double(params.SampleRate),
		C.double(params.Input.Latency.Seconds()), C.ulong(mono.Samples(o.Buffer)), C.uint64_t(mono.Samples(o.Queue)), &code, &sys)
	if c.stream == nil {
		if sys != 0 {
			return fail("open", fmt.Errorf("a pipe for the capture's wakes: %w", syscall.Errno(sys)))
		}
		return fail("open", portaudio.Error(code))
	}
	// The pipe's read end goes to the network poller: waiting for audio
	// blocks no thread.
	c.wake = os.NewFile(uintptr(c.stream.wake[0]), "capture wake")
	if err := portaudio.Error(C.Pa_StartStream(c.stream.stream)); err != portaudio.Error(C.paNoError) {
		c.wake.Close()
		C.vt_capture_close(c.stream)
		return fail("start", err)
	}
	go c.forwardWakes()
	return c, nil
}

// forwardWakes turns the callback's bytes on the pipe into ready, until
// Close closes the pipe.
func (c *Capture) forwardWakes() {
	defer close(c.woken)
	var b [64]byte
	for {
		if _, err := c.wake.Read(b[:]); err != nil {
			return
		}
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
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
	if c.stream == nil {
		return c.overflows, c.dropped
	}
	var dev, drop C.int64_t
	C.vt_capture_overflows(c.stream, &dev, &drop)
	return int64(dev), int64(drop)
}

// read moves what the callback has captured to p (mono, at the device's
// rate); with nothing there it returns 0 and the callback wakes ready.
func (c *Capture) read(p []int16) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return 0, audio.ErrClosed
	}
	// p holds no Go pointers: it may be passed for the call's length.
	return int(C.vt_capture_read(c.stream, (*C.int16_t)(unsafe.Pointer(&p[0])), C.ulong(len(p)))), nil
}

// quiet is how long the device has delivered nothing.
func (c *Capture) quiet() (time.Duration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stream == nil {
		return 0, audio.ErrClosed
	}
	return time.Since(time.Unix(0, int64(C.vt_capture_last(c.stream)))), nil
}

// Read blocks until audio is available and returns it in Format. A device
// that stops delivering (unplugged, suspended, a dead sound server) gives
// an *audio.DeviceError after the Stall time rather than a silent wait.
func (c *Capture) Read(ctx context.Context, p []int16) (int, error) {
	var watchdog *time.Timer
	defer func() {
		if watchdog != nil {
			watchdog.Stop()
		}
	}()
	for {
		if len(c.out) > 0 {
			n := copy(p, c.out)
			c.out = c.out[:copy(c.out, c.out[n:])]
			return n, nil
		}
		if cap(c.raw) < len(p) {
			c.raw = make([]int16, len(p))
		}
		n, err := c.read(c.raw[:len(p)])
		if err != nil {
			return 0, err
		}
		if n > 0 {
			c.out = c.rs.Process(c.out[:0], c.raw[:n])
			continue
		}
		quiet, err := c.quiet()
		if err != nil {
			return 0, err
		}
		if quiet >= c.stall {
			return 0, &audio.DeviceError{Direction: "input", Device: c.info.Name, Op: "read",
				Err: fmt.Errorf("%w: no audio for %s", ErrStalled, quiet.Round(100*time.Millisecond))}
		}
		if watchdog == nil {
			watchdog = time.NewTimer(c.stall - quiet)
		} else {
			watchdog.Reset(c.stall - quiet)
		}
		select {
		case <-c.ready:
		case <-watchdog.C:
		case <-c.closed:
			return 0, audio.ErrClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// Close stops the stream; it is idempotent.
func (c *Capture) Close() error {
	var err error
	c.once.Do(func() {
		close(c.closed)
		c.mu.Lock() // no Read is in the ring now
		defer c.mu.Unlock()
		var dev, drop C.int64_t
		C.vt_capture_overflows(c.stream, &dev, &drop)
		c.overflows, c.dropped = int64(dev), int64(drop)
		if e := portaudio.Error(C.vt_capture_close(c.stream)); e != portaudio.Error(C.paNoError) {
			err = paError(e)
		}
		c.stream = nil
		c.wake.Close()
		<-c.woken
		c.release()
	})
	return err
}
