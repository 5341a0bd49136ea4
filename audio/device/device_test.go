package device

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
)

var server *pulsetest.Server

// TestMain runs every test against a private PulseAudio with virtual
// devices; if it cannot start, the tests fail (they never skip).
func TestMain(m *testing.M) { os.Exit(pulsetest.RunTests(m, &server)) }

func TestListShowsVirtualDevices(t *testing.T) {
	release, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	devs, err := List()
	if err != nil {
		t.Fatal(err)
	}
	in, err := Resolve(devs, Input, "")
	if err != nil {
		t.Fatal(err)
	}
	if !in.DefaultInput {
		t.Errorf("default input %q is not marked default", in.Name)
	}
	mic, err := Resolve(devs, Input, "virtual_mic")
	if err != nil || mic.Name != "virtual_mic" {
		t.Fatalf("virtual_mic not listed: %v %v", mic, err)
	}
	var b strings.Builder
	WriteTable(&b, devs)
	if !strings.Contains(b.String(), "virtual_speaker") || !strings.Contains(b.String(), "INDEX") {
		t.Errorf("table misses the virtual devices:\n%s", b.String())
	}
}

func TestResolve(t *testing.T) {
	devs := []Info{
		{Index: 0, Name: "HDA Intel PCH: ALC3246 Analog (hw:0,0)", InputChannels: 2, OutputChannels: 2},
		{Index: 1, Name: "USB Headset: Audio (hw:1,0)", InputChannels: 1, OutputChannels: 2},
		{Index: 2, Name: "pulse", InputChannels: 32, OutputChannels: 32},
		{Index: 3, Name: "default", InputChannels: 32, OutputChannels: 32, DefaultInput: true, DefaultOutput: true},
		{Index: 4, Name: "HDMI 0 (hw:0,3)", OutputChannels: 8},
	}
	cases := []struct {
		dir      Direction
		selector string
		want     int
		err      error
	}{
		{Input, "", 3, nil},
		{Output, "", 3, nil},
		{Input, "1", 1, nil},
		{Input, "usb", 1, nil},
		{Output, "HDMI", 4, nil},
		{Input, "HDMI", 0, audio.ErrUnknownDevice},           // output only
		{Input, "4", 0, errors.New("has no input channels")}, // output only, by index
		{Input, "hw:", 0, audio.ErrUnknownDevice},            // ambiguous
		{Input, "PULSE", 2, nil},                             // exact, any case
		{Input, "99", 0, audio.ErrUnknownDevice},
		{Input, "bluetooth", 0, audio.ErrUnknownDevice},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%q", tc.dir, tc.selector), func(t *testing.T) {
			got, err := Resolve(devs, tc.dir, tc.selector)
			if tc.err == nil {
				if err != nil || got.Index != tc.want {
					t.Fatalf("got %d, %v; want %d", got.Index, err, tc.want)
				}
				return
			}
			var de *audio.DeviceError
			if !errors.As(err, &de) || !strings.Contains(err.Error(), "voicetui devices") {
				t.Fatalf("error %v should be a DeviceError pointing at `voicetui devices`", err)
			}
			if !errors.Is(err, tc.err) && !strings.Contains(err.Error(), tc.err.Error()) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
		})
	}
	if _, err := Resolve(devs[4:], Input, ""); !errors.Is(err, audio.ErrNoInputDevice) {
		t.Fatalf("no input devices: got %v, want ErrNoInputDevice", err)
	}
}

// signal is a reproducible noise burst: any sample lost, repeated or
// altered on the way shows up in a sample-by-sample comparison.
func signal(n int) []int16 {
	r := rand.New(rand.NewPCG(1, 2))
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(r.IntN(20000) - 10000)
	}
	return s
}

// captureWhileFeeding opens a capture, feeds want into the virtual
// microphone and collects until the signal has come through.
func captureWhileFeeding(t *testing.T, opts *CaptureOptions, want []int16) []int16 {
	t.Helper()
	c, err := OpenCapture(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fed := make(chan error, 1)
	go func() { fed <- server.FeedMic(ctx, want) }()
	var got []int16
	buf := make([]int16, 1024)
	start := -1
	for start < 0 || len(got)-start < len(want) {
		n, err := c.Read(ctx, buf)
		if err != nil {
			t.Fatalf("read after %d samples: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
		if start < 0 {
			for i, v := range got {
				if v != 0 {
					start = i
					break
				}
			}
		}
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	return got[start : start+len(want)]
}

func TestCaptureKnownSignalIsSampleExact(t *testing.T) {
	want := signal(pulsetest.MicRate) // one second
	got := captureWhileFeeding(t, nil, want)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("sample %d = %d, want %d (capture must be bit-exact at the mic's own rate)", i, got[i], want[i])
		}
	}
}

func TestCaptureByNameAndIndex(t *testing.T) {
	release, err := Init()
	if err != nil {
		t.Fatal(err)
	}
	devs, _ := List()
	release()
	mic, err := Resolve(devs, Input, "virtual_mic")
	if err != nil {
		t.Fatal(err)
	}
	want := signal(1600)
	for _, sel := range []string{"virtual_mic", fmt.Sprint(mic.Index)} {
		got := captureWhileFeeding(t, &CaptureOptions{Device: sel}, want)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("device %q: sample %d = %d, want %d", sel, i, got[i], want[i])
			}
		}
	}
}

func TestCaptureUnknownDevice(t *testing.T) {
	_, err := OpenCapture(&CaptureOptions{Device: "no-such-microphone"})
	var de *audio.DeviceError
	if !errors.As(err, &de) || !errors.Is(err, audio.ErrUnknownDevice) {
		t.Fatalf("got %v, want a DeviceError wrapping ErrUnknownDevice", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"no-such-microphone"`) || !strings.Contains(msg, "voicetui devices") || strings.Contains(msg, "\n") {
		t.Fatalf("message should be one line naming the device and what to try: %q", msg)
	}
}

// BenchmarkCaptureLatency measures the time from handing a burst to the
// virtual microphone (a running pacat; its 20 ms buffer is included) until
// the capture source delivers its first sample.
func BenchmarkCaptureLatency(b *testing.B) {
	c, err := OpenCapture(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	feed, err := server.OpenMicFeed()
	if err != nil {
		b.Fatal(err)
	}
	defer feed.Close()
	burst := signal(800) // 50 ms
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		drain(ctx, c)
		start := time.Now()
		if err := feed.Write(burst); err != nil {
			b.Fatal(err)
		}
		buf := make([]int16, 512)
		for found := false; !found; {
			n, err := c.Read(ctx, buf)
			if err != nil {
				b.Fatal(err)
			}
			for _, v := range buf[:n] {
				if v != 0 {
					found = true
					break
				}
			}
		}
		total += time.Since(start)
		time.Sleep(100 * time.Millisecond)
		cancel()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/capture")
}

// drain discards what the source delivers for a moment, so stale audio
// from the previous round is gone.
func drain(ctx context.Context, c *Capture) {
	short, cancel := context.WithTimeout(ctx, 150*time.Millisecond)
	defer cancel()
	buf := make([]int16, 4096)
	for {
		if _, err := c.Read(short, buf); err != nil {
			return
		}
	}
}

func TestCaptureReportsAStalledDevice(t *testing.T) {
	c, err := OpenCapture(&CaptureOptions{Stall: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	buf := make([]int16, 1024)
	if _, err := c.Read(ctx, buf); err != nil {
		t.Fatalf("a running device: %v", err)
	}
	if err := server.SuspendMic(true); err != nil {
		t.Fatal(err)
	}
	defer server.SuspendMic(false)
	for {
		_, err := c.Read(ctx, buf)
		if err == nil {
			continue
		}
		var de *audio.DeviceError
		if !errors.As(err, &de) || !errors.Is(err, ErrStalled) {
			t.Fatalf("got %v, want a DeviceError wrapping ErrStalled (not a silent wait)", err)
		}
		if !strings.Contains(err.Error(), "no audio for") {
			t.Fatalf("message %q", err)
		}
		return
	}
}

// A Read waiting on a silent device ends when its context is cancelled,
// and, in another round, when the capture is closed, and Close returns
// with the device still silent; a Read after Close says the capture is
// closed.
func TestCaptureWaitEndsOnCancelAndClose(t *testing.T) {
	c := openRunning(t, &CaptureOptions{Stall: time.Minute})
	buf := make([]int16, 1024)
	if err := server.SuspendMic(true); err != nil {
		t.Fatal(err)
	}
	defer server.SuspendMic(false)
	wait := func(ctx context.Context) error {
		for {
			if _, err := c.Read(ctx, buf); err != nil {
				return err
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	if err := wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while waiting: got %v, want context.Canceled", err)
	}
	// The old context's cancellation must not end waits under a new one.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel2()
	if err := wait(ctx2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a second context: got %v, want its deadline", err)
	}
	closed := make(chan error, 1)
	time.AfterFunc(300*time.Millisecond, func() { closed <- c.Close() })
	if err := wait(context.Background()); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("closed while waiting: got %v, want audio.ErrClosed", err)
	}
	// Close itself ends while the device is still silent (it waited two
	// minutes for the device once, stopping rather than aborting).
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Close waits for a suspended device")
	}
	if _, err := c.Read(context.Background(), buf); !errors.Is(err, audio.ErrClosed) {
		t.Fatalf("read after close: got %v, want audio.ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
}

// What the device has delivered is read even under a cancelled context,
// which ends the reading only once the ring is empty.
func TestCaptureReturnsAudioBeforeCancellation(t *testing.T) {
	c := openRunning(t, nil)
	buf := make([]int16, 160)
	time.Sleep(300 * time.Millisecond) // a few callbacks' worth waits in the ring
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	got := 0
	for {
		n, err := c.Read(ctx, buf)
		got += n
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("got %v, want context.Canceled once the ring is empty", err)
			}
			break
		}
	}
	if got < audio.Pipeline.Samples(100*time.Millisecond) {
		t.Fatalf("read %d samples under the cancelled context, want what 300 ms left in the ring", got)
	}
}

// openRunning opens a capture (closed at the test's end) and reads from it
// once: the device delivers.
func openRunning(t *testing.T, opts *CaptureOptions) *Capture {
	t.Helper()
	c, err := OpenCapture(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Read(context.Background(), make([]int16, 160)); err != nil {
		t.Fatalf("a running device: %v", err)
	}
	return c
}
