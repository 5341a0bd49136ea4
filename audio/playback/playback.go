// Package playback plays audio on the speaker through oto (ALSA on Linux).
// It is the only package that links oto.
package playback

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebitengine/oto/v3"

	"github.com/voicetui/voicetui/audio"
)

// Options tune Open. The zero value plays on the default device at 48 kHz.
type Options struct {
	// SampleRate of the device; default 48000. oto allows one context per
	// process, so the first Open fixes it for every later Speaker.
	SampleRate int
	// Buffer is the device buffer (two periods); default 120 ms, the
	// smallest that played 60 s without a gap on a 2-core machine with
	// both cores busy (40 ms had 7 gaps, 80 ms 2-3). Smaller lowers the
	// latency of a running device and makes Flush quicker; a suspended
	// device (the usual state when a sound starts) starts with an empty
	// buffer whatever its size. An ALSA underrun that fails to recover
	// stops oto for good (Speaker.Err reports it).
	Buffer time.Duration
	// Queue is how much audio Write may queue ahead; default 30 s.
	Queue time.Duration
	// ALSADevice names the ALSA PCM to play on ("" = ALSA's default). oto
	// always opens ALSA's default PCM, so another device is selected by
	// redirecting that default (see selectALSADevice).
	ALSADevice string
}

// outputDevice is the process-wide oto context and what it was opened
// with: oto refuses a second NewContext and has no way to close one.
type outputDevice struct {
	ctx    *oto.Context
	format audio.Format
	buffer time.Duration
	label  string // the ALSA device, "default" when none was chosen

	// While nothing plays the device is suspended: oto's loop otherwise
	// blocks in snd_pcm_writei every period, writing silence, and each
	// blocking cgo call wakes the Go scheduler's monitor. That was most of
	// an idle session's CPU. mu guards asleep and the calls that change it.
	mu       sync.Mutex
	asleep   bool
	sleptAt  time.Time
	lastData atomic.Int64 // unix ns: audio last handed to the device, or a wake
}

// wakeQueue is how much oto's player queue holds, in device periods, when
// the device resumes: its buffer is empty then and it takes three periods
// at once, before oto's mixer runs again to top the queue up.
const wakeQueue = 3

// Idle handling of the device (see outputDevice).
const (
	idleAfter  = 150 * time.Millisecond // nothing to play for this long: suspend (oto has played its last queued samples by then)
	probeEvery = 2 * time.Second        // while suspended, run the device for a tick this often, so a device that died is noticed
	idleTick   = 100 * time.Millisecond
)

// wake resumes a suspended device (and says so): audio is coming. fresh
// runs first: the speaker drops what oto's player queued before the sleep
// (silence that would play ahead of the new audio).
func (d *outputDevice) wake(fresh func()) bool {
	d.lastData.Store(time.Now().UnixNano())
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.asleep {
		return false
	}
	d.asleep = false
	fresh()
	d.ctx.Resume()
	return true
}

// sleeping reports whether the device is suspended.
func (d *outputDevice) sleeping() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.asleep
}

// idle suspends the device once nothing has played for idleAfter, and
// probes a suspended one every probeEvery: it runs for one idleTick, long
// enough for a write to fail on a device that is gone. queued says
// whether a speaker still holds audio. It returns how long the caller may
// wait before asking again.
func (d *outputDevice) idle(now time.Time, queued bool) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.asleep && queued:
		return idleTick // a wake is due (Speaker.start): no probe before it
	case d.asleep && now.Sub(d.sleptAt) >= probeEvery:
		d.asleep = false
		d.lastData.Store(now.Add(idleTick - idleAfter).UnixNano()) // asleep again at the next tick
		d.ctx.Resume()
	case d.asleep:
		return d.sleptAt.Add(probeEvery).Sub(now)
	case !queued && now.Sub(time.Unix(0, d.lastData.Load())) >= idleAfter:
		if d.ctx.Suspend() == nil {
			d.asleep, d.sleptAt = true, now
			return probeEvery
		}
	}
	return idleTick
}

// shared is this package's only state, set once.
var shared struct {
	once sync.Once
	dev  *outputDevice
	err  error
}

func openDevice(o Options) (*outputDevice, error) {
	shared.once.Do(func() { shared.dev, shared.err = newDevice(o) })
	if shared.err == nil && shared.dev.label != deviceLabel(o.ALSADevice) {
		return nil, fmt.Errorf("already playing on %q; one output device per process", shared.dev.label)
	}
	return shared.dev, shared.err
}

func newDevice(o Options) (*outputDevice, error) {
	if o.ALSADevice != "" {
		if err := selectALSADevice(o.ALSADevice); err != nil {
			return nil, err
		}
	}
	ctx, ready, err := oto.NewContext(&oto.NewContextOptions{
		SampleRate:   o.SampleRate,
		ChannelCount: 1,
		Format:       oto.FormatSignedInt16LE,
		BufferSize:   o.Buffer,
	})
	if err != nil {
		return nil, err
	}
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		return nil, fmt.Errorf("the audio device did not become ready within 5 s")
	}
	// oto reports a failed device open only through Err after ready.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d := &outputDevice{
		ctx:    ctx,
		format: audio.Format{SampleRate: o.SampleRate, Channels: 1},
		buffer: o.Buffer,
		label:  deviceLabel(o.ALSADevice),
	}
	// Nothing to play yet: asleep from the start, so the first sound (a
	// fallback clip when the very first request is refused) starts at once.
	d.lastData.Store(time.Now().UnixNano())
	if ctx.Suspend() == nil {
		d.asleep, d.sleptAt = true, time.Now()
	}
	return d, nil
}

func deviceLabel(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// hwName finds "hw:1,0" in PortAudio's names for ALSA hardware devices,
// e.g. "HDA Intel PCH: ALC3246 Analog (hw:0,0)".
var hwName = regexp.MustCompile(`\((hw:\d+,\d+)\)\s*$`)

// ALSAName turns a PortAudio device name into the ALSA PCM to open:
// "plughw:X,Y" for a hardware device (plug converts rate and format), the
// name itself for a named PCM such as "pulse".
func ALSAName(portAudioName string) string {
	if m := hwName.FindStringSubmatch(portAudioName); m != nil {
		return "plug" + m[1]
	}
	return portAudioName
}

// selectALSADevice points ALSA's default PCM at name for this process by
// appending a small configuration file to ALSA_CONFIG_PATH, which ALSA
// re-reads when the list changes. Loaded after the main configuration, its
// !default overrides any earlier default.
func selectALSADevice(name string) error {
	if name == "default" {
		return nil
	}
	dir, err := os.MkdirTemp("", "voicetui-alsa-")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, "output.conf")
	conf := fmt.Sprintf("pcm.!default { type plug slave.pcm %q }\n", name)
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	base := os.Getenv("ALSA_CONFIG_PATH")
	if base == "" {
		base = "/usr/share/alsa/alsa.conf"
	}
	return os.Setenv("ALSA_CONFIG_PATH", base+":"+path)
}

// Speaker is an audio.Sink on the sound card. oto pulls from a ring buffer
// under its own lock, so the reader never waits: what the ring lacks is
// padded with silence. (A reader that returns nothing makes oto's Play spin
// until its queue fills, and a blocking one stalls all playback.)
type Speaker struct {
	dev    *outputDevice
	player *oto.Player
	ring   *audio.Ring
	reader *ringReader
	space  chan struct{} // signalled when the reader frees room
	woken  chan struct{} // signalled when a Write resumed the device
	closed chan struct{}
	once   sync.Once

	wakeMu    sync.Mutex
	wakeLater *deferral // a sleeping device's wake, deferred for more of the stream (start)

	underruns atomic.Int64 // gaps heard inside a stream
	open      atomic.Bool  // a stream is open: written since the last Drain/Flush
	monitor   atomic.Pointer[audio.Monitor]
}

// SetMonitor makes m hear everything this speaker hands the device (an
// echo canceller's reference); nil stops it.
func (s *Speaker) SetMonitor(m audio.Monitor) {
	if m == nil {
		s.monitor.Store(nil)
		return
	}
	s.monitor.Store(&m)
}

// dropQueue empties oto's player queue; a monitor hears that what it
// held will not play.
func (s *Speaker) dropQueue() {
	if m := s.monitor.Load(); m != nil {
		(*m).Unplayed(s.player.BufferedSize() / 2)
	}
	s.player.Reset()
}

// Open starts a speaker. A device that fails to open gives an
// *audio.DeviceError.
func Open(opts *Options) (*Speaker, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.SampleRate == 0 {
		o.SampleRate = 48000
	}
	if o.Buffer <= 0 {
		o.Buffer = 120 * time.Millisecond
	}
	if o.Queue <= 0 {
		o.Queue = 30 * time.Second
	}
	dev, err := openDevice(o)
	if err != nil {
		return nil, &audio.DeviceError{Direction: "output", Device: deviceLabel(o.ALSADevice), Op: "open", Err: err}
	}
	s := &Speaker{
		dev:    dev,
		ring:   audio.NewRing(dev.format.Samples(o.Queue)),
		space:  make(chan struct{}, 1),
		woken:  make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	s.reader = &ringReader{s: s}
	s.player = dev.ctx.NewPlayer(s.reader)
	// oto keeps a per-player queue that its mixer tops up from our reader
	// between periods; it must hold at least one device period, or a
	// period is handed to ALSA with a hole in it. More only adds latency
	// (behind queued silence), except when the device resumes (wakeQueue).
	s.player.SetBufferSize(s.queueBytes(1))
	s.player.Play()
	go s.watchIdle()
	return s, nil
}

// watchIdle lets the device sleep while this speaker has nothing to play.
// A Write wakes it at once; this only decides when to sleep (and probe).
func (s *Speaker) watchIdle() {
	t := time.NewTimer(idleTick)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case now := <-t.C:
			t.Reset(min(s.dev.idle(now, s.ring.Len() > 0), probeEvery))
		case <-s.woken:
			t.Reset(idleTick)
		}
	}
}

// period is one device period in samples: half the device buffer.
func (s *Speaker) period() int { return max(s.dev.format.Samples(s.dev.buffer/2), 64) }

// Format is what Write expects (mono at the device rate).
func (s *Speaker) Format() audio.Format { return s.dev.format }

// Underruns counts gaps heard inside a stream: the queue ran dry before
// the writer had finished (Drain or Flush end a stream).
func (s *Speaker) Underruns() int64 { return s.underruns.Load() }

// Queued is the audio written but not yet handed to oto (oto holds at
// most two more periods, silence included).
func (s *Speaker) Queued() time.Duration {
	return s.dev.format.Duration(s.ring.Len())
}

// Err reports a device that has failed (e.g. an ALSA underrun it could not
// recover from). oto stops playing for good then; Write and Drain return
// this error rather than waiting on a device that will never play.
func (s *Speaker) Err() error {
	if err := s.dev.ctx.Err(); err != nil {
		return &audio.DeviceError{Direction: "output", Device: s.dev.label, Op: "play", Err: err}
	}
	return nil
}

// Write queues p, waiting for room while the queue is full.
func (s *Speaker) Write(ctx context.Context, p []int16) (int, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, err // a cancelled reply must not slip in after a Flush
	}
	if s.reader.dry.Swap(false) && s.open.Load() {
		s.underruns.Add(1)
	}
	// Nothing queued, and the last audio left for oto's queue longer ago
	// than that queue lasts (two periods): all it holds is silence, which
	// would play first. It is dropped once the new audio is in the ring
	// (the player refills from it at once).
	s.open.Store(true)
	fresh := s.ring.Len() == 0 && time.Since(time.Unix(0, s.dev.lastData.Load())) > s.dev.format.Duration(2*s.period())
	woken := false
	total := 0
	for {
		n := s.ring.Write(p[total:])
		total += n
		if n > 0 && !woken {
			woken = true
			s.start(fresh, n)
		}
		if total == len(p) {
			return total, nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-s.space:
		case <-t.C: // look at the device again
		case <-s.closed:
			t.Stop()
			return total, audio.ErrClosed
		case <-ctx.Done():
			t.Stop()
			return total, ctx.Err()
		}
		t.Stop()
		if err := s.Err(); err != nil {
			return total, err
		}
	}
}

// start makes the device play what the ring holds, piece being what was
// just written: it wakes a sleeping device, or drops the silence oto's
// queue holds (fresh). A sleeping device takes wakeQueue periods at once
// when it wakes, padded with silence where the ring holds less, and that
// silence would play between this piece and the next. So the device waits
// until the ring holds enough, or for a bound. A piece of a period or more
// comes from a source that makes audio faster than it plays (a
// synthesizer's chunks): enough is what the device takes at once, and the
// next pieces come within prebuffer. A shorter one is a live stream's
// frame (WebRTC's 10-20 ms), whose next frames come in their own time:
// enough is liveLead, and the device waits as long as the frames take to
// fill it.
func (s *Speaker) start(fresh bool, piece int) {
	lead, wait := wakeQueue*s.period(), prebuffer
	if piece < s.period() { // a live frame
		lead = liveLead * s.period()
		wait = s.dev.format.Duration(lead - piece)
	}
	if s.dev.sleeping() && s.ring.Len() < lead {
		s.wakeMu.Lock()
		defer s.wakeMu.Unlock()
		if s.wakeLater == nil {
			d := new(deferral) // made before the timer: its callback only compares it
			d.timer = time.AfterFunc(wait, func() { s.deferredWake(d) })
			s.wakeLater = d
		}
		return
	}
	s.wakeNow(fresh)
}

// prebuffer bounds how long a sleeping device waits for a stream's first
// pieces to fill what it takes at once when it wakes (start).
const prebuffer = 40 * time.Millisecond

// liveLead is how far ahead of the device, in periods, a live stream must
// be when it wakes the device, or the device runs dry and plays silence
// until the stream is that far ahead. Measured on the headless server with
// 20 ms frames at their real pace: 3 periods left 100 ms of gaps in the
// first 300 ms, 4 left 20-40 ms, 5 and 6 none. Woken at once by the first
// frame, as before, the stream was heard as that frame, 160 ms of
// silence, 80 ms of sound and 100 ms of silence: after the first frame it
// was already 260 ms behind, so the wait costs the rest of the stream
// 40 ms and spares it the stutter.
const liveLead = 5

// wakeNow wakes the device (or restarts a fresh stream) at once; a wake
// deferred by start is cancelled.
func (s *Speaker) wakeNow(fresh bool) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	s.stopWakeLater()
	s.wakeDevice(fresh)
}

// deferral is a deferred wake (start); its timer is set under wakeMu.
type deferral struct{ timer *time.Timer }

// deferredWake is d's wake, unless Flush, Close or a later write came
// first. wakeMu is held throughout: Flush and Close wait for a wake under
// way.
func (s *Speaker) deferredWake(d *deferral) {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	if s.wakeLater != d {
		return
	}
	s.wakeLater = nil
	select {
	case <-s.closed:
	default:
		s.wakeDevice(false)
	}
}

// wakeDevice: wakeMu held.
func (s *Speaker) wakeDevice(fresh bool) {
	if s.dev.wake(s.restartAwake) {
		select {
		case s.woken <- struct{}{}: // the idle watcher waits for a probe; it should watch again
		default:
		}
	} else if fresh {
		s.restart()
	}
}

// stopWakeLater cancels a deferred wake: wakeMu held.
func (s *Speaker) stopWakeLater() {
	if s.wakeLater != nil {
		s.wakeLater.timer.Stop()
		s.wakeLater = nil
	}
}

// cancelWakeLater cancels a deferred wake, waiting for one under way.
func (s *Speaker) cancelWakeLater() {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	s.stopWakeLater()
}

// wakePending reports a wake deferred by start.
func (s *Speaker) wakePending() bool {
	s.wakeMu.Lock()
	defer s.wakeMu.Unlock()
	return s.wakeLater != nil
}

// restart drops oto's player queue (its silence), then lets it refill
// from the ring.
func (s *Speaker) restart() {
	s.dropQueue()
	s.play()
}

// play starts oto's player and returns once its queue holds what the ring
// gave it. oto's Play returns as soon as its own goroutine has started to
// fill the queue; a device resumed before that fill ends handed ALSA a
// period of silence first (the first sound was heard a period, 60 ms,
// late; in the quota bench up to 180 ms). The fill is one copy from the
// ring, so this waits microseconds, and never longer than maxFill.
func (s *Speaker) play() {
	s.player.Play()
	const maxFill = 20 * time.Millisecond
	deadline := time.Now().Add(maxFill)
	for s.player.BufferedSize() == 0 && s.player.IsPlaying() && time.Now().Before(deadline) {
		runtime.Gosched()
	}
}

// restartAwake is restart for a device about to resume: the queue is
// filled with wakeQueue periods (oto's fill asks for them in one read, so
// the smaller size set after it does not cut it short), then topped up
// one at a time again.
func (s *Speaker) restartAwake() {
	s.dropQueue()
	s.player.SetBufferSize(s.queueBytes(wakeQueue))
	s.play()
	s.player.SetBufferSize(s.queueBytes(1))
}

// queueBytes is n device periods of oto's queue, in bytes.
func (s *Speaker) queueBytes(n int) int { return n * s.period() * 2 }

// Flush drops everything queued; the device falls silent within its own
// buffer (Options.Buffer).
func (s *Speaker) Flush() {
	s.open.Store(false)
	s.cancelWakeLater()
	s.ring.Reset()
	s.dropQueue() // oto's small queue; Reset pauses, so play on
	s.player.Play()
	s.reader.dry.Store(false)
}

// Drain waits until everything written has been played, give or take a
// device period.
func (s *Speaker) Drain(ctx context.Context) error {
	defer s.open.Store(false)
	if s.wakePending() {
		s.wakeNow(false) // nothing more is coming
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.ring.Len() > 0 {
		if err := s.Err(); err != nil {
			return err
		}
		select {
		case <-t.C:
		case <-s.closed:
			return audio.ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// The last samples are now in oto's queue (at most wakeQueue periods)
	// or in the device buffer.
	timer := time.NewTimer(s.dev.format.Duration(wakeQueue*s.period()) + s.dev.buffer)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops this speaker's player. The process-wide device stays open
// for the next Speaker (oto cannot close it).
func (s *Speaker) Close() error {
	var err error
	s.once.Do(func() {
		s.SetMonitor(nil)
		s.cancelWakeLater()
		close(s.closed)
		s.ring.Reset()
		err = s.player.Close()
	})
	return err
}

// ringReader is the io.Reader oto pulls from, under oto's lock: it copies
// what the ring holds and returns at once, never waiting.
type ringReader struct {
	s *Speaker
	// oto calls Read from its mixer and, during Play, from the caller's
	// goroutine too: mu keeps the two off buf. Each holds it for a copy.
	mu  sync.Mutex
	buf []int16
	dry atomic.Bool // the ring ran empty after delivering audio
}

func (r *ringReader) Read(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := len(p) / 2
	if cap(r.buf) < want {
		r.buf = make([]int16, want) // once: oto's request size is fixed
	}
	n := r.s.ring.Read(r.buf[:want])
	if n > 0 {
		r.s.dev.lastData.Store(time.Now().UnixNano())
	}
	for i, v := range r.buf[:n] {
		binary.LittleEndian.PutUint16(p[2*i:], uint16(v))
	}
	clear(p[2*n : 2*want]) // silence for what the ring lacked
	if m := r.s.monitor.Load(); m != nil {
		clear(r.buf[n:want])
		(*m).Played(r.buf[:want], r.s.dev.format.SampleRate, time.Now())
	}
	if n > 0 {
		select {
		case r.s.space <- struct{}{}:
		default:
		}
		if r.s.ring.Len() == 0 {
			r.dry.Store(true)
		}
	}
	return 2 * want, nil
}
