package main

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/ui"
)

// sentLevels records what the pump sends, and when.
type sentLevels struct {
	mu   sync.Mutex
	msgs []ui.LevelMsg
	at   []time.Time
}

func (s *sentLevels) send(m ui.LevelMsg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs, s.at = append(s.msgs, m), append(s.at, time.Now())
}

func (s *sentLevels) take() ([]ui.LevelMsg, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, at := s.msgs, s.at
	s.msgs, s.at = nil, nil
	return m, at
}

// The meters' pump sends what changed, at most 20 times a second, lets
// the output meter fall to silence after a sound, and sends nothing while
// nothing changes (it has no clock of its own then).
func TestLevelsPump(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLevels()
		var got sentLevels
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { defer close(done); l.pump(stop, got.send) }()
		defer func() { close(stop); <-done }()

		// Silence in and out: nothing to send.
		for range 50 {
			l.input(audio.Levels{RMS: audio.Silence, Peak: audio.Silence})
			time.Sleep(60 * time.Millisecond)
		}
		if m, _ := got.take(); len(m) > 0 {
			t.Fatalf("sent %d levels while nothing changed: %v", len(m), m)
		}

		// The microphone hears something: sent, once.
		for range 10 {
			l.input(audio.Levels{RMS: -20, Peak: -12})
			time.Sleep(20 * time.Millisecond)
		}
		synctest.Wait()
		m, _ := got.take()
		if len(m) != 1 || m[0].In.RMS != -20 || m[0].Out != audio.Silence {
			t.Fatalf("after a steady -20 dBFS at the microphone: %v, want one message", m)
		}

		// A sound plays for 200 ms, then the output meter falls.
		for range 10 {
			l.output(-10)
			time.Sleep(20 * time.Millisecond)
		}
		ended := time.Now()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		m, at := got.take()
		if len(m) < 3 || m[0].Out != -10 || m[len(m)-1].Out != audio.Silence {
			t.Fatalf("a sound at -10 dBFS, then nothing: %v, want -10 first and silence last", m)
		}
		for i := 1; i < len(m); i++ {
			if at[i-1].After(ended) && m[i].Out > m[i-1].Out {
				t.Fatalf("the output meter rose after the sound ended: %v", m)
			}
			if gap := at[i].Sub(at[i-1]); gap < levelsEvery {
				t.Fatalf("two sends %v apart, want at least %v", gap, levelsEvery)
			}
		}
		// Fallen to silence, the pump is quiet again.
		time.Sleep(5 * time.Second)
		if m, _ := got.take(); len(m) > 0 {
			t.Fatalf("sent %v after the output meter reached silence", m)
		}
	})
}
