package device

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gordonklaus/portaudio"

	"github.com/voicetui/voicetui/audio"
)

// CaptureOptions tune OpenCapture. The zero value captures from the
// default device in the pipeline format.
type CaptureOptions struct {
	Device string        // selector: "" (default), an index, or a name substring
	Format audio.Format  // what Read returns; mono only. Default audio.Pipeline
	Buffer time.Duration // audio per callback; default 60 ms: each callback wakes the Go runtime, which costs more idle CPU than the 40 ms it saves in latency
	Queue  time.Duration // audio held for a slow reader before overflowing; default 2 s
	Stall  time.Duration // no audio from the device for this long is an error; default 2 s
}

// Capture is a microphone Source. PortAudio's callback copies each buffer
// into a ring and never waits; Read resamples to the requested format.
type Capture struct {
	info     Info
	format   audio.Format
	devRate  int
	channels int
	stream   *portaudio.Stream
	release  func()

	ring   *audio.Ring
	mono   []int16 // callback scratch for downmixing, preallocated
	ready  chan struct{}
	closed chan struct{}
	once   sync.Once

	// Reader side.
	rs  *audio.Resampler
	raw []int16
	out []int16

	stall    time.Duration
	lastData atomic.Int64 // UnixNano of the last callback

	deviceOverflows atomic.Int64 // buffers PortAudio flagged as overflowed
	dropped         atomic.Int64 // samples lost because Read fell behind
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
		info:     info,
		format:   o.Format,
		devRate:  int(params.SampleRate),
		channels: params.Input.Channels,
		ready:    make(chan struct{}, 1),
		closed:   make(chan struct{}),
		stall:    o.Stall,
	}
	params.FramesPerBuffer = audio.Format{SampleRate: c.devRate, Channels: 1}.Samples(o.Buffer)
	c.ring = audio.NewRing(audio.Format{SampleRate: c.devRate, Channels: 1}.Samples(o.Queue))
	c.mono = make([]int16, params.FramesPerBuffer*4)
	if c.rs, err = audio.NewResampler(c.devRate, o.Format.SampleRate); err != nil {
		return fail("open", err)
	}
	stream, err := portaudio.OpenStream(params, c.callback)
	if err != nil {
		return fail("open", err)
	}
	if err := stream.Start(); err != nil {
		stream.Close()
		return fail("start", err)
	}
	c.stream = stream
	c.lastData.Store(time.Now().UnixNano())
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

// callback runs on PortAudio's thread: copy, count, signal; nothing else.
func (c *Capture) callback(in []int16, _ portaudio.StreamCallbackTimeInfo, flags portaudio.StreamCallbackFlags) {
	if flags&portaudio.InputOverflow != 0 {
		c.deviceOverflows.Add(1)
	}
	c.lastData.Store(time.Now().UnixNano())
	samples := in
	if c.channels == 2 {
		// Bounded by c.mono's capacity, so the callback never allocates.
		samples = audio.DownmixStereo(in[:min(len(in), 2*cap(c.mono))], c.mono[:0])
	}
	if n := c.ring.Write(samples); n < len(samples) {
		c.dropped.Add(int64(len(samples) - n))
	}
	select {
	case c.ready <- struct{}{}:
	default:
	}
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
	return c.deviceOverflows.Load(), c.dropped.Load()
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
		if n := c.ring.Read(c.raw[:len(p)]); n > 0 {
			c.out = c.rs.Process(c.out[:0], c.raw[:n])
			continue
		}
		quiet := time.Since(time.Unix(0, c.lastData.Load()))
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
		if e := c.stream.Stop(); e != nil {
			err = paError(e)
		}
		if e := c.stream.Close(); e != nil && err == nil {
			err = paError(e)
		}
		c.release()
	})
	return err
}
