package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

var (
	server *pulsetest.Server
	binary string
)

// TestMain builds the real binary and starts the headless audio setup;
// the tests run the binary as a user would. Missing setup fails loudly.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "voicetui-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "FAIL:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "voicetui")
	if out, err := exec.Command("go", "build", "-tags", pipelinetest.BuildTags(), "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: build voicetui: %v\n%s", err, out)
		os.Exit(1)
	}
	code := pulsetest.RunTests(m, &server)
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func voicetui(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return voicetuiFor(t, 30*time.Second, env, args...)
}

func voicetuiFor(t *testing.T, limit time.Duration, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("voicetui %v hung", args)
	}
	return result{out.String(), errb.String(), code}
}

func TestDevicesListsVirtualDevices(t *testing.T) {
	for _, args := range [][]string{{"devices"}, {"--list-devices"}} {
		r := voicetui(t, nil, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		for _, want := range []string{"INDEX", "virtual_mic", "virtual_speaker", "default"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v: table lacks %q:\n%s", args, want, r.stdout)
			}
		}
		// ALSA and JACK chatter is silenced.
		if r.stderr != "" {
			t.Errorf("%v: stderr not quiet: %q", args, r.stderr)
		}
	}
}

func TestDeviceErrorsExitTwoWithOneLine(t *testing.T) {
	// A machine with the stock ALSA configuration and no sound server
	// running: PortAudio finds no device at all.
	noServer := []string{"ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf", "PULSE_SERVER=unix:" + filepath.Join(t.TempDir(), "none")}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown input", nil, []string{"check", "--input-device", "no-such-mic"}, `input device "no-such-mic"`},
		{"unknown output", nil, []string{"check", "--output-device", "no-such-speaker"}, `output device "no-such-speaker"`},
		{"index out of range", nil, []string{"check", "--input-device", "99"}, "no device has index 99"},
		{"no devices", noServer, []string{"check"}, "no usable"},
		{"no devices to list", noServer, []string{"devices"}, "no usable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := voicetui(t, tc.env, tc.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2; stderr %q", r.code, r.stderr)
			}
			line := strings.TrimSpace(r.stderr)
			// The devices command is the hint itself; the others point to it.
			hinted := tc.args[0] == "devices" || strings.Contains(line, "voicetui devices")
			if strings.Count(line, "\n") != 0 || !strings.Contains(line, tc.want) || !hinted {
				t.Fatalf("stderr should be one line naming the device and `voicetui devices`: %q", r.stderr)
			}
			if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine") {
				t.Fatalf("panicked: %s", r.stderr)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"check", "--seconds", "0"}, {"--bogus"}, {"--max-unrecoverable-errors", "-1"}, {"--error-audio", "/nope.wav"}, {"--speech-end", "0s"}, {"--aec", "maybe"}} {
		if r := voicetui(t, nil, args...); r.code != 2 {
			t.Errorf("%v: exit %d, want 2", args, r.code)
		}
	}
}

// checkLoopback runs `voicetui check` while a tone plays into the virtual
// microphone and returns what the given sink heard.
func checkLoopback(t *testing.T, sink string, args ...string) []int16 {
	t.Helper()
	rec, err := server.Record(sink, 2000)
	if err != nil {
		t.Fatal(err)
	}
	feed, err := server.OpenMicFeed()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan result, 1)
	go func() { done <- voicetui(t, nil, append([]string{"check", "--seconds", "1.5"}, args...)...) }()
	// 440 Hz into the microphone while voicetui records.
	for i := 0; i < 20; i++ {
		chunk := make([]int16, 1600)
		for k := range chunk {
			chunk[k] = int16(12000 * math.Sin(2*math.Pi*440*float64(i*1600+k)/16000))
		}
		feed.Write(chunk)
	}
	r := <-done
	feed.Close()
	time.Sleep(100 * time.Millisecond)
	got, _ := rec.Stop()
	if r.code != 0 {
		t.Fatalf("check exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "Done: 0 underruns") {
		t.Errorf("check output: %s", r.stdout)
	}
	return got
}

func TestCheckPlaysTheMicrophoneBack(t *testing.T) {
	got := checkLoopback(t, "spk")
	if lv := audio.RMS(got); lv < -30 {
		t.Fatalf("speaker heard %.1f dBFS: the recording was not played back", lv)
	}
}

func TestCheckOutputDeviceSelection(t *testing.T) {
	// other_speaker is not the default: the tone must reach "other" only.
	spk, err := server.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	got := checkLoopback(t, "other", "--output-device", "other_speaker")
	onDefault, _ := spk.Stop()
	if lv := audio.RMS(got); lv < -30 {
		t.Fatalf("selected speaker heard %.1f dBFS, want the tone", lv)
	}
	if lv := audio.RMS(onDefault); lv > -60 {
		t.Fatalf("default speaker heard %.1f dBFS, want silence", lv)
	}
}
