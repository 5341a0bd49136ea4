package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/device"
	"github.com/voicetui/voicetui/audio/playback"
)

func listDevices(stdout io.Writer) error {
	release, err := device.Init()
	if err != nil {
		return err
	}
	defer release()
	devs, err := device.List()
	if err != nil {
		return err
	}
	if len(devs) == 0 {
		return fmt.Errorf("%w and %w: PortAudio found no devices (is the sound server running?)", audio.ErrNoInputDevice, audio.ErrNoOutputDevice)
	}
	return device.WriteTable(stdout, devs)
}

// openDevices resolves and opens the microphone and the speaker.
//
// The microphone opens first: selecting a speaker other than the default
// redirects ALSA's "default" for this process (playback.ALSAName), which
// would then also be what a default microphone opens.
func openDevices(c config) (*device.Capture, *playback.Speaker, error) {
	mic, err := device.OpenCapture(&device.CaptureOptions{Device: c.inputDevice})
	if err != nil {
		return nil, nil, err
	}
	spk, err := openSpeaker(c)
	if err != nil {
		mic.Close()
		return nil, nil, err
	}
	return mic, spk, nil
}

// openSpeaker resolves and opens the speaker.
func openSpeaker(c config) (*playback.Speaker, error) {
	release, err := device.Init()
	if err != nil {
		return nil, err
	}
	defer release()
	devs, err := device.List()
	if err != nil {
		return nil, err
	}
	out, err := device.Resolve(devs, device.Output, c.outputDevice)
	if err != nil {
		return nil, err
	}
	opts := &playback.Options{}
	if !out.DefaultOutput {
		opts.ALSADevice = playback.ALSAName(out.Name)
	}
	spk, err := playback.Open(opts)
	if err != nil {
		var de *audio.DeviceError
		if errors.As(err, &de) {
			de.Device = out.Name
		}
		return nil, err
	}
	return spk, nil
}

// check records from the microphone with a live level meter, then plays
// the recording back: the quickest proof that both devices work.
func check(ctx context.Context, c config, stdout, stderr io.Writer) error {
	mic, spk, err := openDevices(c)
	if err != nil {
		return err
	}
	defer mic.Close()
	defer spk.Close()
	fmt.Fprintf(stdout, "Recording %.1f s from %q (%d Hz)... speak now.\n", c.seconds, mic.Info().Name, mic.DeviceRate())

	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	f := mic.Format()
	meter := audio.NewMeter(f.SampleRate, 14)
	want := f.Samples(c.checkDuration())
	rec := make([]int16, 0, want)
	buf := make([]int16, f.Samples(20*time.Millisecond))
	peak := audio.Silence
	lastDraw := time.Time{}
	for len(rec) < want {
		n, err := mic.Read(ctx, buf[:min(len(buf), want-len(rec))])
		if err != nil {
			return fmt.Errorf("check: read microphone: %w", err)
		}
		rec = append(rec, buf[:n]...)
		lv := meter.Update(buf[:n])
		peak = max(peak, lv.Peak)
		if tty && time.Since(lastDraw) > 50*time.Millisecond {
			fmt.Fprintf(stderr, "\r%s", meterLine(lv))
			lastDraw = time.Now()
		}
	}
	if tty {
		fmt.Fprint(stderr, "\r\033[K")
	}
	devOverflows, dropped := mic.Overflows()
	fmt.Fprintf(stdout, "Microphone: level %.1f dBFS, peak %.1f dBFS, %d overflowed buffers, %d samples dropped.\n",
		audio.RMS(rec), peak, devOverflows, dropped)
	if peak <= -60 {
		fmt.Fprintln(stdout, "The microphone delivered (near) silence: is it muted, or is another device the right one? See 'voicetui devices'.")
	}

	rs, err := audio.NewResampler(f.SampleRate, spk.Format().SampleRate)
	if err != nil {
		return err
	}
	out := rs.Process(nil, rec)
	out = rs.Process(out, make([]int16, rs.Delay()*f.SampleRate/spk.Format().SampleRate+1)) // flush the filter's tail
	fmt.Fprintf(stdout, "Playing it back (%d Hz)...\n", spk.Format().SampleRate)
	if _, err := spk.Write(ctx, out); err != nil {
		return fmt.Errorf("check: play: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, spk.Format().Duration(len(out))+5*time.Second)
	defer cancel()
	if err := spk.Drain(dctx); err != nil {
		return fmt.Errorf("check: play: %w", err)
	}
	fmt.Fprintf(stdout, "Done: %d underruns.\n", spk.Underruns())
	return nil
}

// meterLine draws "mic ▁▃▅▇▅▃▁ -23.4 dBFS" from a meter reading.
func meterLine(lv audio.Levels) string {
	bars := []rune(" ▁▂▃▄▅▆▇█")
	top := len(bars) - 1
	var b strings.Builder
	b.WriteString("mic ")
	for _, v := range lv.Bands {
		// -70 dBFS and below is empty, -10 and above is full.
		k := int((v + 70) / 60 * float64(top))
		b.WriteRune(bars[max(0, min(top, k))])
	}
	fmt.Fprintf(&b, " %6.1f dBFS", lv.RMS)
	return b.String()
}
