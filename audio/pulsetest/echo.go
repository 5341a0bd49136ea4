package pulsetest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os/exec"
	"time"
)

// EchoPath plays what reaches the virtual speaker back into the virtual
// microphone, as a laptop's room does: after a delay, attenuated, through
// a few reflections and a small speaker's low-pass. It runs through the
// sound server (a recorder of the speaker's monitor, a player into the
// microphone), so its timing is the server's, jitter included.
type EchoPath struct {
	cancel context.CancelFunc
	rec    *exec.Cmd
	play   *exec.Cmd
	done   chan error
}

// echoTaps are the room's reflections: delay (ms) -> gain of the direct
// sound's. The same room as audio/echo's offline tests.
var echoTaps = map[int]float64{0: 1, 3: 0.5, 11: -0.3, 23: 0.15}

// StartEcho starts an echo path with the given extra delay (on top of the
// server's own buffering) and gain (dB, below 0).
func (s *Server) StartEcho(delay time.Duration, gainDB float64) (*EchoPath, error) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &EchoPath{cancel: cancel, done: make(chan error, 1)}
	e.rec = exec.CommandContext(ctx, "parec", "--device=spk.monitor", "--latency-msec=10",
		"--format=s16le", fmt.Sprintf("--rate=%d", MicRate), "--channels=1", "--raw", "--client-name=voicetui-echo")
	e.play = micFeeder(ctx, 30)
	in, err := e.rec.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	out, err := e.play.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := e.rec.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("headless audio: parec: %w", err)
	}
	if err := e.play.Start(); err != nil {
		cancel()
		e.rec.Wait()
		return nil, fmt.Errorf("headless audio: pacat: %w", err)
	}
	go func() { e.done <- runEcho(in, out, delay, math.Pow(10, gainDB/20)) }()
	// Wait until the recorder is connected: nothing played later is missed.
	deadline := time.Now().Add(5 * time.Second)
	for !s.connected("voicetui-echo") {
		if time.Now().After(deadline) {
			e.Stop()
			return nil, fmt.Errorf("headless audio: the echo path's recorder did not connect within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return e, nil
}

// runEcho filters in to out until in ends. It must keep up with the
// server whatever the machine's load (under -race too): a filter that
// falls behind lets the monitor's audio pile up in the pipe, and the
// echo's delay grows by tens of milliseconds a second, which no room does.
// So the past is a ring (no copy per sample) and the taps a slice.
func runEcho(in io.Reader, out io.WriteCloser, delay time.Duration, gain float64) error {
	defer out.Close()
	type tap struct {
		lag  int // samples
		gain float64
	}
	var taps []tap
	maxTap := 0
	for d, g := range echoTaps {
		taps = append(taps, tap{d * MicRate / 1000, g})
		maxTap = max(maxTap, d*MicRate/1000)
	}
	hist := make([]float64, maxTap+1) // the last inputs: hist[at] is the newest
	at := 0
	// The delay is silence ahead of the stream: the stream is continuous
	// (the monitor runs while nothing plays), so it stays that long.
	if _, err := out.Write(make([]byte, 2*int(delay.Seconds()*MicRate))); err != nil {
		return err
	}
	buf := make([]byte, 2*MicRate/100)
	res := make([]byte, len(buf))
	var lp float64
	for {
		n, err := io.ReadFull(in, buf)
		n &^= 1
		for i := 0; i < n; i += 2 {
			at = (at + 1) % len(hist)
			hist[at] = float64(int16(binary.LittleEndian.Uint16(buf[i:])))
			var y float64
			for _, t := range taps {
				y += t.gain * hist[(at-t.lag+len(hist))%len(hist)]
			}
			lp += 0.5 * (y - lp)
			v := max(-32768, min(32767, math.Round(gain*lp)))
			binary.LittleEndian.PutUint16(res[i:], uint16(int16(v)))
		}
		if _, werr := out.Write(res[:n]); werr != nil {
			return werr
		}
		if err != nil {
			return nil
		}
	}
}

// Stop ends the echo path.
func (e *EchoPath) Stop() error {
	e.cancel()
	e.rec.Wait()
	e.play.Wait()
	return nil
}
