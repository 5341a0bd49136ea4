// Package pulsetest runs a private PulseAudio server for tests with virtual devices so
// that real PortAudio capture and oto playback can be exercised on a machine
// without a sound card: a null sink "mic" whose monitor is the default
// microphone, and a null sink "spk" that is the default speaker. ALSA's
// pulse plugin bridges both libraries to it.
//
// The server lives in a private runtime directory: it never touches a
// user's own sound server. Start sets this process's environment
// (XDG_RUNTIME_DIR, PULSE_SERVER, ALSA_CONFIG_PATH), so it must run before
// PortAudio is initialised or an oto context is created.
package pulsetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Rates of the virtual devices.
const (
	MicRate     = 16000
	SpeakerRate = 48000
)

const serverConfig = `load-module module-native-protocol-unix auth-anonymous=1
load-module module-cli-protocol-unix
load-module module-null-sink sink_name=spk rate=48000 channels=1 format=s16le norewinds=1 sink_properties=device.description=VirtualSpeaker
load-module module-null-sink sink_name=mic rate=16000 channels=1 format=s16le norewinds=1 sink_properties=device.description=VirtualMicFeed
load-module module-null-sink sink_name=other rate=48000 channels=1 format=s16le norewinds=1 sink_properties=device.description=OtherSpeaker
set-default-sink spk
set-default-source mic.monitor
`

// alsaConfig is self-contained, so ALSA probes no card and prints nothing.
// Besides the default device it names two more, with hints so PortAudio
// lists them: they let tests select a device by name.
const alsaConfig = `pcm.default { type pulse }
ctl.default { type pulse }
pcm.virtual_speaker { type pulse device spk hint { show on description "Virtual speaker (headless test)" } }
pcm.other_speaker { type pulse device other hint { show on description "Other speaker (headless test)" } }
pcm.virtual_mic { type pulse device mic.monitor hint { show on description "Virtual microphone (headless test)" } }
`

// RunTests serves a TestMain for packages that test real devices: it
// takes the real-time test lock (LockRealtime), starts a server, stores it in *srv, runs the tests, stops the server and
// returns the exit code. When the server cannot start, the tests fail with
// the reason; they never skip.
func RunTests(m *testing.M, srv **Server) int {
	unlock, err := LockRealtime()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		return 1
	}
	defer unlock()
	s, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: these tests need the headless audio setup:", err)
		return 1
	}
	*srv = s
	defer s.Stop()
	return m.Run()
}

// Packages the setup needs, for error messages.
const packages = "pulseaudio pulseaudio-utils libasound2-plugins"

// Server is a running private PulseAudio.
type Server struct {
	Dir string // private runtime directory
	Env []string
	log string
}

// Start launches the server and points this process at it. It fails with
// an actionable message when a tool is missing or the server won't start.
func Start() (*Server, error) {
	for _, tool := range []string{"pulseaudio", "pactl", "pacat", "parec"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("headless audio: %s not found: run `make setup` (Debian packages: %s)", tool, packages)
		}
	}
	if plugins, _ := filepath.Glob(pulsePlugin); len(plugins) == 0 {
		return nil, fmt.Errorf("headless audio: ALSA pulse plugin (%s) missing: run `make setup` (Debian package libasound2-plugins)", pulsePlugin)
	}
	dir, err := os.MkdirTemp("", "voicetui-pulse-")
	if err != nil {
		return nil, fmt.Errorf("headless audio: %w", err)
	}
	s := &Server{Dir: dir, log: filepath.Join(dir, "pulse.log")}
	files := map[string]string{
		"ci.pa":       serverConfig,
		"alsa.conf":   alsaConfig,
		"client.conf": "autospawn = no\n",
		"daemon.conf": "flat-volumes = no\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			return nil, fmt.Errorf("headless audio: %w", err)
		}
	}
	s.Env = []string{
		"XDG_RUNTIME_DIR=" + dir,
		"PULSE_SERVER=unix:" + filepath.Join(dir, "pulse", "native"),
		"PULSE_CLIENTCONFIG=" + filepath.Join(dir, "client.conf"),
		"ALSA_CONFIG_PATH=" + filepath.Join(dir, "alsa.conf"),
	}
	// A test binary that dies (a panic, a timeout) never calls Stop: the
	// daemon then exits by itself once it has had no client for a while.
	cmd := exec.Command("pulseaudio", "--daemonize=yes", "--exit-idle-time=120", "-n",
		"-F", filepath.Join(dir, "ci.pa"), "--log-target=file:"+s.log, "--use-pid-file=yes")
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Env = append(cmd.Env, "HOME="+dir, "PULSE_CONFIG_PATH="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("headless audio: pulseaudio would not start: %v: %s %s", err, bytes.TrimSpace(out), s.tailLog())
	}
	for _, kv := range s.Env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	// Wait until it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := s.pactl("info")
		if err == nil && strings.Contains(out, "Server Name") {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return nil, fmt.Errorf("headless audio: pulseaudio did not answer within 10 s: %v %s", err, s.tailLog())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const pulsePlugin = "/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so"

func (s *Server) tailLog() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func (s *Server) pactl(args ...string) (string, error) {
	cmd := exec.Command("pactl", args...)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Stop ends the server and removes its directory.
func (s *Server) Stop() error {
	cmd := exec.Command("pulseaudio", "--kill")
	cmd.Env = append(os.Environ(), s.Env...)
	err := cmd.Run()
	// Give it a moment to remove its socket before the directory goes.
	time.Sleep(100 * time.Millisecond)
	os.RemoveAll(s.Dir)
	return err
}

// FeedMic plays mono 16 kHz samples into the virtual microphone and
// returns once pacat has handed them all to the server. pacat gets a
// generous buffer so a busy machine does not starve it into inserting
// silence: what the microphone receives is exactly samples.
func (s *Server) FeedMic(ctx context.Context, samples []int16) error {
	cmd := micFeeder(ctx, 500)
	cmd.Stdin = bytes.NewReader(pcmBytes(samples))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("headless audio: pacat: %v: %s", err, out)
	}
	return nil
}

// micFeeder is a pacat that plays raw mono 16 kHz from stdin into the
// virtual microphone with the given buffer.
func micFeeder(ctx context.Context, latencyMs int) *exec.Cmd {
	return exec.CommandContext(ctx, "pacat", "--playback", fmt.Sprintf("--latency-msec=%d", latencyMs),
		"--device=mic", "--format=s16le", fmt.Sprintf("--rate=%d", MicRate), "--channels=1", "--raw")
}

// MicFeed is a long-running pacat feeding the virtual microphone, so that
// a write reaches the microphone without the cost of starting a process.
type MicFeed struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// OpenMicFeed starts a feeder; Write sends mono 16 kHz samples.
func (s *Server) OpenMicFeed() (*MicFeed, error) {
	cmd := micFeeder(context.Background(), 20)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("headless audio: pacat: %w", err)
	}
	return &MicFeed{cmd: cmd, stdin: stdin}, nil
}

// Write hands samples to pacat.
func (f *MicFeed) Write(samples []int16) error {
	_, err := f.stdin.Write(pcmBytes(samples))
	return err
}

// Close ends the feeder after it has played what it was given.
func (f *MicFeed) Close() error {
	f.stdin.Close()
	return f.cmd.Wait()
}

// Recording captures a sink's monitor in the background.
type Recording struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu        sync.Mutex
	samples   []int16
	firstTime time.Time // wall-clock arrival of the first loud sample
	threshold int16
	err       error
}

// Record starts recording sink ("spk" or "other") at SpeakerRate and
// returns once the server reports the recording stream connected, so
// nothing played afterwards is missed. Samples louder than threshold mark
// FirstSound. The recorder asks for 20 ms of latency.
func (s *Server) Record(sink string, threshold int16) (*Recording, error) {
	return s.RecordLatency(sink, threshold, 20*time.Millisecond)
}

// RecordLatency is Record with the recorder's latency chosen. The null
// sink then renders in blocks of about that length (the smallest latency
// its monitor's recorders ask for), so a sound that starts is heard on the
// monitor up to one block later: with 20 ms, timings to the first sound
// carry 0-20 ms of the recorder's own making; 5 ms keeps that small.
func (s *Server) RecordLatency(sink string, threshold int16, latency time.Duration) (*Recording, error) {
	// A name of its own, so waiting for this recorder is not fooled by
	// another one already connected.
	name := fmt.Sprintf("voicetui-recorder-%d", recorders.Add(1))
	cmd := exec.Command("parec", fmt.Sprintf("--latency-msec=%d", latency.Milliseconds()), "--device="+sink+".monitor",
		"--format=s16le", fmt.Sprintf("--rate=%d", SpeakerRate), "--channels=1", "--raw",
		"--client-name="+name)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("headless audio: parec: %w", err)
	}
	r := &Recording{cmd: cmd, done: make(chan struct{}), threshold: threshold}
	go r.read(stdout)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if s.connected(name) {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Stop()
			return nil, fmt.Errorf("headless audio: parec did not connect: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var recorders atomic.Int64

// connected says whether a client of that name is recording.
func (s *Server) connected(name string) bool {
	out, _ := s.pactl("list", "source-outputs")
	return strings.Contains(out, `"`+name+`"`)
}

func (r *Recording) read(rd io.Reader) {
	defer close(r.done)
	br := bufio.NewReaderSize(rd, 4096)
	buf := make([]byte, 1920) // 20 ms
	var odd []byte
	for {
		n, err := br.Read(buf)
		if n > 0 {
			now := time.Now()
			b := append(odd, buf[:n]...)
			k := len(b) &^ 1
			r.mu.Lock()
			for i := 0; i < k; i += 2 {
				v := int16(binary.LittleEndian.Uint16(b[i:]))
				if r.firstTime.IsZero() && (v > r.threshold || v < -r.threshold) {
					r.firstTime = now
				}
				r.samples = append(r.samples, v)
			}
			r.mu.Unlock()
			odd = append(odd[:0], b[k:]...)
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
			}
			return
		}
	}
}

// FirstSound is when the first sample above the threshold arrived, by the
// wall clock of this process (the recorder's own latency included).
func (r *Recording) FirstSound() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.firstTime, !r.firstTime.IsZero()
}

// LoudSpan is the index of the first and the last sample of x beyond
// ±threshold, or -1, -1 when there is none.
func LoudSpan(x []int16, threshold int16) (first, last int) {
	first, last = -1, -1
	for i, v := range x {
		if v > threshold || v < -threshold {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

// Samples returns a copy of what has been recorded so far.
func (r *Recording) Samples() []int16 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int16(nil), r.samples...)
}

// Stop ends the recording and returns everything recorded.
func (r *Recording) Stop() ([]int16, error) {
	if r.cmd.Process != nil {
		r.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-r.done:
	case <-time.After(3 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
	r.cmd.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.samples, r.err
}

func pcmBytes(samples []int16) []byte {
	b := make([]byte, 2*len(samples))
	for i, v := range samples {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}

// UnplugSpeaker takes sink away from under process pid, which plays on it
// by name, as when the headset it chose is pulled out: the sink goes
// (PulseAudio moves the process's streams to another sink) and the moved
// streams are ended, so the process cannot open its device again. (Ending
// the streams alone is no test: ALSA's pulse plugin opens a new stream on
// the same sink when it recovers from an underrun, and plays on, so the
// device would be gone or not by a race.) replug puts the sink back.
func (s *Server) UnplugSpeaker(sink string, pid int) (replug func() error, err error) {
	out, err := s.pactl("list", "short", "modules")
	if err != nil {
		return nil, fmt.Errorf("headless audio: list modules: %v: %s", err, out)
	}
	var index string
	var args []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "\t")
		if len(f) >= 3 && f[1] == "module-null-sink" && strings.HasPrefix(f[2], "sink_name="+sink+" ") {
			index, args = f[0], strings.Fields(f[2])
		}
	}
	if index == "" {
		return nil, fmt.Errorf("headless audio: no sink %q", sink)
	}
	if out, err := s.pactl("unload-module", index); err != nil {
		return nil, fmt.Errorf("headless audio: unload sink %s: %v: %s", sink, err, out)
	}
	replug = func() error {
		if out, err := s.pactl(append([]string{"load-module", "module-null-sink"}, args...)...); err != nil {
			return fmt.Errorf("headless audio: load sink %s again: %v: %s", sink, err, out)
		}
		return nil
	}
	if err := s.killPlayback(pid); err != nil {
		replug()
		return nil, err
	}
	return replug, nil
}

// killPlayback ends the playback streams of process pid from the server
// side. pactl has no kill command; pacmd talks to the server's CLI socket.
func (s *Server) killPlayback(pid int) error {
	want := fmt.Sprintf("application.process.id = \"%d\"", pid)
	out, err := s.pactl("list", "sink-inputs")
	if err != nil {
		return fmt.Errorf("headless audio: list playback streams: %v: %s", err, out)
	}
	killed := 0
	for _, block := range strings.Split(out, "Sink Input #")[1:] {
		if !strings.Contains(block, want) {
			continue
		}
		index, _, _ := strings.Cut(block, "\n")
		cmd := exec.Command("pacmd", "kill-sink-input", strings.TrimSpace(index))
		cmd.Env = os.Environ()
		if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			return fmt.Errorf("headless audio: kill playback stream %s: %v: %s", strings.TrimSpace(index), err, out)
		}
		killed++
	}
	if killed == 0 {
		return fmt.Errorf("headless audio: process %d has no playback stream", pid)
	}
	return nil
}

// SuspendMic stops (true) or resumes (false) the virtual microphone, as a
// device that stops delivering audio would.
func (s *Server) SuspendMic(suspend bool) error {
	v := "0"
	if suspend {
		v = "1"
	}
	if out, err := s.pactl("suspend-sink", "mic", v); err != nil {
		return fmt.Errorf("headless audio: suspend mic: %v: %s", err, out)
	}
	return nil
}
