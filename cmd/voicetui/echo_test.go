package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// Echo cancellation on the rig: the virtual speaker's sound comes back
// into the virtual microphone 30 ms later (plus the sound server's own
// buffering), 10 dB down, through a small room's reflections, as a
// laptop's speakers reach its microphone (pulsetest.StartEcho). The real
// binary, real devices, the embedded gateway.

const (
	rigDelay = 30 * time.Millisecond
	rigGain  = -10.0
)

func startEchoRig(t testing.TB) {
	t.Helper()
	path, err := server.StartEcho(rigDelay, rigGain)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { path.Stop() })
}

// longReplies is a script whose every line makes the demo agent speak for
// several seconds (it repeats what it heard).
func longReplies(t testing.TB, n int) string {
	var lines []string
	for i := range n {
		lines = append(lines, fmt.Sprintf("number %d: the trains to the coast leave every hour from the old station, "+
			"and on Sundays they stop at every village along the river before they reach the sea", i+1))
	}
	path := filepath.Join(t.TempDir(), "script.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func spoken(t testing.TB, sentence string) []int16 {
	t.Helper()
	pcm, _, err := audio.ReadWAVFile(spokenWAV(t, 300*time.Millisecond, sentence, 700*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func (r *liveRun) all() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event(nil), r.events...)
}

func (r *liveRun) count(ok func(event) bool) int {
	n := 0
	for _, e := range r.all() {
		if ok(e) {
			n++
		}
	}
	return n
}

func interrupted(e event) bool { return e.typ() == "agent_text" && e["interrupted"] == true }
func replied(e event) bool {
	return e.typ() == "agent_text" && e["final"] == true && e["interrupted"] != true
}

// A minute of conversation with replies of several seconds each: with
// echo cancellation on (the default) the agent never hears itself, so it
// never interrupts itself, and every question gets its whole reply.
func TestEchoRigAgentNeverInterruptsItself(t *testing.T) {
	startEchoRig(t)
	r := startLive(t, "--stt-script", longReplies(t, 20))
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	question := spoken(t, "Tell me about the trains.")
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	start := time.Now()
	asked := 0
	for time.Since(start) < 55*time.Second {
		if err := server.FeedMic(ctx, question); err != nil {
			t.Fatal(err)
		}
		asked++
		// The reply has played and the agent listens again (its metrics),
		// or it stopped.
		r.wait(t, 30*time.Second, fmt.Sprintf("the end of reply %d", asked), func(e event) bool {
			return e.typ() == "metrics" && e["turn"] == float64(asked) || interrupted(e)
		})
		time.Sleep(time.Second)
		if n := r.count(interrupted); n > 0 {
			t.Fatalf("the agent interrupted itself (%d) after %v: %v", n, time.Since(start).Round(time.Second), r.all())
		}
		if n := r.count(replied); n != asked {
			t.Fatalf("%d replies to %d questions: the agent took its own echo for a turn: %v", n, asked, r.all())
		}
	}
	t.Logf("%d questions and whole replies in %v, no self-interruption", asked, time.Since(start).Round(time.Second))
	if asked < 4 {
		t.Fatalf("only %d turns in a minute", asked)
	}
}

// The control: the same rig without echo cancellation. The half-duplex
// gate raises the threshold by 10 dB, and the echo is louder than that:
// the agent interrupts itself. (If this passes with 0, the rig is too
// quiet to prove anything above.)
func TestEchoRigWithoutCancellationInterruptsItself(t *testing.T) {
	startEchoRig(t)
	r := startLive(t, "--aec", "off", "--stt-script", longReplies(t, 5))
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := server.FeedMic(ctx, spoken(t, "Tell me about the trains.")); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 30*time.Second, "a self-interruption", interrupted)
}

// Double talk: the user talks over the agent at an ordinary level, and
// the agent stops (barge-in) while its echo is being cancelled.
func TestEchoRigBargeInOverTheAgent(t *testing.T) {
	startEchoRig(t)
	r := startLive(t, "--stt-script", longReplies(t, 5))
	r.wait(t, 20*time.Second, "listening", func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := server.FeedMic(ctx, spoken(t, "Tell me about the trains.")); err != nil {
		t.Fatal(err)
	}
	r.wait(t, 20*time.Second, "the agent speaking", func(e event) bool { return e.typ() == "state" && e["agent"] == "speaking" })
	time.Sleep(1500 * time.Millisecond)
	if n := r.count(interrupted); n > 0 {
		t.Fatalf("interrupted before the user spoke: %v", r.all())
	}
	go server.FeedMic(ctx, spoken(t, "Stop please, I have another question about the trains."))
	stopped := r.wait(t, 10*time.Second, "the barge-in", interrupted)
	// A barge-in: the agent stopped while the user was still talking, not
	// once the user's turn had ended (which would interrupt it as well).
	speaking := false
	for _, e := range r.all() {
		if e.typ() == "state" && e.at() < stopped.at() {
			speaking = e["user"] == "speaking"
		}
	}
	if !speaking {
		t.Fatalf("the agent stopped after the user's turn, not during it: %v", r.all())
	}
}

// BenchmarkBargeIn: from the user's first word reaching the microphone
// (give or take the feeder's 20 ms) to the agent stopping (the
// interrupted reply's event, on its own clock), the agent speaking:
// with echo cancellation on the rig, and the half-duplex gate without
// echo for comparison. Barge-in itself asks for 500 ms of speech.
func BenchmarkBargeIn(b *testing.B) {
	for _, c := range []struct {
		name string
		echo bool
		args []string
	}{{"aec_over_echo", true, nil}, {"half_duplex_no_echo", false, []string{"--aec", "off"}}} {
		b.Run(c.name, func(b *testing.B) {
			if c.echo {
				startEchoRig(b)
			}
			question, stop := spoken(b, "Tell me about the trains."), spoken(b, "Stop please, I have another question about the trains.")
			lead := 300 * time.Millisecond // spoken() starts with that much silence
			var total time.Duration
			for range b.N {
				args := append([]string{"--headless", "--stt-script", longReplies(b, 3)}, c.args...)
				r := startBinary(b, noCredentials, args...)
				r.waitFor(b, func(e event) bool { return e.typ() == "state" && e["agent"] == "listening" })
				feed, err := server.OpenMicFeed()
				if err != nil {
					b.Fatal(err)
				}
				feed.Write(question)
				r.waitFor(b, func(e event) bool { return e.typ() == "state" && e["agent"] == "speaking" })
				time.Sleep(1500 * time.Millisecond)
				talk := time.Now().Add(lead)
				feed.Write(stop)
				// Events wait in the channel until read: their own clock
				// says when they happened (t_ms counts from about the
				// process's start).
				e := r.waitFor(b, interrupted)
				total += e.at() - talk.Sub(r.started)
				feed.Close()
				r.stop()
			}
			b.ReportMetric(float64((total / time.Duration(b.N)).Milliseconds()), "ms_to_stop")
		})
	}
}
