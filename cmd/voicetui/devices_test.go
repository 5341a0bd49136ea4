package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Devices that come and go, on the headless sound server: the real
// binary, real PortAudio capture and oto playback.

// liveRun is the binary running with --headless on the real devices; its
// events are read as they come.
type liveRun struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	events []event
	done   chan struct{}
}

func startLive(t *testing.T, args ...string) *liveRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary, append([]string{"--headless"}, args...)...)
	cmd.Env = append(os.Environ(), noCredentials...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &liveRun{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				r.mu.Lock()
				r.events = append(r.events, e)
				r.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return r
}

// wait waits for an event matching ok.
func (r *liveRun) wait(t *testing.T, limit time.Duration, what string, ok func(event) bool) event {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		r.mu.Lock()
		for _, e := range r.events {
			if ok(e) {
				r.mu.Unlock()
				return e
			}
		}
		all := append([]event(nil), r.events...)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v; events: %v", what, limit, all)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The virtual microphone stops (suspended, as an unplugged or stalled
// device): status and event at once, the device earcon at the speaker,
// the session goes on; it comes back when the microphone does.
func TestMicrophoneLostAndBack(t *testing.T) {
	rec, err := server.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Stop()
	r := startLive(t)
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	if err := server.SuspendMic(true); err != nil {
		t.Fatal(err)
	}
	suspended := time.Now()
	lost := r.wait(t, 10*time.Second, "a device error", func(e event) bool { return e.typ() == "error" && e["stage"] == "device" })
	if lost["terminal"] != false || !strings.Contains(lost["message"].(string), "microphone") || !strings.Contains(lost["hint"].(string), "--input-device") {
		t.Fatalf("error %v", lost)
	}
	r.wait(t, 5*time.Second, "the device earcon", func(e event) bool { return e.typ() == "fallback" && e["clip"] == "earcon_device" && e["ok"] == true })
	if at, ok := rec.FirstSound(); !ok || at.Before(suspended) {
		t.Fatalf("no sound at the speaker after the microphone stopped (first at %v)", at)
	}
	if err := server.SuspendMic(false); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 15*time.Second, "the microphone back", func(e event) bool { return e.typ() == "device" && e["ok"] == true })
	// It works: speech is heard and answered.
	speakIntoMic(t, t.Context(), "What time is it?")
	r.wait(t, 20*time.Second, "a reply", func(e event) bool { return e.typ() == "agent_text" && e["final"] == true })
	r.cmd.Process.Signal(syscall.SIGINT)
	<-r.done
}

// The microphone stops and the user quits before it comes back: the
// session closes the stalled device without waiting for it (stopping the
// stream once waited two minutes for a suspended source, the loop frozen
// meanwhile: no events, no sounds, no quitting).
func TestMicrophoneLostThenQuit(t *testing.T) {
	r := startLive(t)
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	if err := server.SuspendMic(true); err != nil {
		t.Fatal(err)
	}
	defer server.SuspendMic(false)
	r.wait(t, 10*time.Second, "a device error", func(e event) bool { return e.typ() == "error" && e["stage"] == "device" })
	r.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatal("still running 20 s after SIGINT with the microphone suspended")
	}
}

// No capture device at all (ALSA offers playback only): the interface
// starts anyway, in text mode, and says why and how to pick a device.
func TestNoMicrophoneStartsInTextMode(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "alsa.conf")
	os.WriteFile(conf, []byte(`pcm.speaker_only { type pulse device spk }
pcm.default { type asym playback.pcm "speaker_only" }
ctl.default { type pulse }
`), 0o644)
	s := startTmuxEnv(t, 100, 30, []string{"ALSA_CONFIG_PATH=" + conf})
	s.waitScreen(20*time.Second, "no microphone", "type your turns", "say:")
	s.keys("help", "Enter")
	s.waitScreen(15*time.Second, "I am the embedded demo agent")
	s.keys("C-c")
	s.waitScreen(10*time.Second, "EXITED 0")
}

// The speaker the user chose goes away under the client, as when a USB
// headset is pulled: its sink goes and the sound server ends the stream,
// so it cannot be opened again. Terminal, said with the device stage,
// exit non-zero, and noticed while idle, not at the next reply.
func TestSpeakerGoneIsTerminal(t *testing.T) {
	r := startLive(t, "--output-device", "other_speaker")
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	replug, err := server.UnplugSpeaker("other", r.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := replug(); err != nil {
			t.Error(err)
		}
	})
	// Nothing is playing: the session notices at once, not at the next reply.
	c := r.wait(t, 30*time.Second, "the close", func(e event) bool { return e.typ() == "close" })
	ce, _ := c["error"].(map[string]any)
	if c["reason"] != "error" || ce == nil || ce["stage"] != "device" || ce["terminal"] != true {
		t.Fatalf("close %v", c)
	}
	if hint, _ := ce["hint"].(string); !strings.Contains(hint, "--output-device") {
		t.Fatalf("the hint does not say how to pick another speaker: %v", c)
	}
	<-r.done
	r.cmd.Wait()
	if r.cmd.ProcessState.ExitCode() == 0 {
		t.Fatal("exit 0 after the speaker died")
	}
}
