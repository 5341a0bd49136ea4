package console

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/livekit/protocol/livekit/agent"

	"github.com/voicetui/voicetui/audio"
)

// Control messages are never dropped; microphone audio is, oldest first.
func TestOutboxKeepsControlMessages(t *testing.T) {
	o := newOutbox()
	finished := &agent.AgentSessionMessage{Message: &agent.AgentSessionMessage_AudioPlaybackFinished{}}
	m := newMicFrames()
	for range 300 {
		for _, a := range m.messages(make([]int16, 320)) {
			o.put(a)
		}
	}
	o.put(finished)
	if got := o.take(); got != finished {
		t.Fatalf("first out: %v, want the control message", got)
	}
	n := 0
	for o.take() != nil {
		n++
	}
	if n != maxAudio {
		t.Fatalf("%d audio frames kept, want %d", n, maxAudio)
	}
}

// A loud sink: counts the audible samples it played.
type loudSink struct {
	*audio.ClockSink
	loud atomic.Int64
}

func newLoudSink(t *testing.T) *loudSink {
	s := &loudSink{}
	clock, err := audio.NewClockSink(audio.Format{SampleRate: wireRate, Channels: 1}, func(p []int16) error {
		if audio.RMS(p) > -40 {
			s.loud.Add(int64(len(p)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clock.Close() })
	s.ClockSink = clock
	return s
}

func tone(n int) []int16 {
	p := make([]int16, n)
	for i := range p {
		p[i] = int16(8000 * (i%48 - 24) / 24)
	}
	return p
}

// The agent pauses while its segment is open but everything received has
// been played (TTS at about real time): what comes next is held, not
// played over the user, until it speaks again; a clear drops it.
func TestPauseHoldsAnOpenSegment(t *testing.T) {
	spk := newLoudSink(t)
	p := newPlayer(spk)
	var finished atomic.Int32
	p.level, p.hold, p.heard, p.finished = nil, func() bool { return false }, func(time.Time) {}, func() { finished.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	p.push(item{pcm: tone(4800), rate: wireRate}) // 100 ms
	eventually(t, "the first piece played", func() bool { return spk.loud.Load() >= 4800 && !p.pending() })
	if !p.pause(true) {
		t.Fatal("the open segment was not held")
	}
	before := spk.loud.Load()
	p.push(item{pcm: tone(9600), rate: wireRate})
	p.push(item{flush: true})
	time.Sleep(400 * time.Millisecond)
	if got := spk.loud.Load() - before; got > 0 || finished.Load() != 0 {
		t.Fatalf("%d samples played, %d finished while paused", got, finished.Load())
	}
	p.pause(false) // it speaks again
	eventually(t, "the held piece played and its segment answered", func() bool {
		return spk.loud.Load()-before >= 4800 && finished.Load() == 1
	})
	// A new segment, paused, then cleared: nothing of it plays, no finished.
	p.push(item{pcm: tone(4800), rate: wireRate})
	p.pause(true)
	p.push(item{pcm: tone(4800), rate: wireRate})
	p.push(item{flush: true})
	p.clear()
	before = spk.loud.Load()
	time.Sleep(300 * time.Millisecond)
	if got := spk.loud.Load() - before; got > 0 || finished.Load() != 1 {
		t.Fatalf("%d samples, %d finished after a clear", got, finished.Load())
	}
}

// A frame at a rate no framework uses is refused, not played as noise.
func TestOddRatesAreRefused(t *testing.T) {
	f := frame(make([]int16, 441))
	f.SampleRate = 44101
	if _, _, ok := samples(f); ok {
		t.Fatal("44101 Hz accepted")
	}
	f.SampleRate = 44100
	if _, _, ok := samples(f); !ok {
		t.Fatal("44100 Hz refused")
	}
}

// A connection from this user is the agent's kind.
func TestSameUserOnLoopback(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !sameUser(s) {
		t.Fatal("a connection from this process is not this user's")
	}
}

// What the agent's log says in a hint has its secrets hidden.
func TestLastLinesHideSecrets(t *testing.T) {
	r := &run{o: Options{Env: []string{"LIVEKIT_API_SECRET=supersecretvalue123", "PATH=/bin"}}}
	p := &process{tail: &tail{}}
	p.tail.Write([]byte("connecting with supersecretvalue123\nGET wss://gw/v1/stt?token=abc.def.ghi failed\n\x1b[31mError: eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.sig refused\x1b[0m\n}\n\nNode.js v20.1.0\n"))
	got := p.lastLines(3, r.redact)
	if strings.Contains(got, "supersecret") || strings.Contains(got, "abc.def") || strings.Contains(got, "eyJ") || strings.Contains(got, "\x1b") {
		t.Fatalf("secrets or escapes shown: %q", got)
	}
	if !strings.Contains(got, "connecting with [redacted]") || !strings.Contains(got, "Error:") {
		t.Fatalf("lines lost: %q", got)
	}
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
