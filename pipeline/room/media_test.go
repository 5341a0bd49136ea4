package room

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// writes notes when each write reached it.
type writes struct {
	mu sync.Mutex
	at []time.Time
}

func (w *writes) Format() audio.Format { return audio.Format{SampleRate: trackRate, Channels: 1} }
func (w *writes) Write(_ context.Context, p []int16) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.at = append(w.at, time.Now())
	return len(p), nil
}
func (w *writes) Flush()                      {}
func (w *writes) Drain(context.Context) error { return nil }
func (w *writes) Close() error                { return nil }
func (w *writes) first() (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.at) == 0 {
		return time.Time{}, false
	}
	return w.at[0], true
}

// The agent's audio waits for a local sound (the earcon) to end, and a
// sound that goes on does not hold it past holdMax. On testing/synctest's
// fake clock: exact instants, no flakes.
func TestAgentAudioWaitsForTheEarcon(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sounding time.Duration // how long hold says a sound plays
		min, max time.Duration // when the first write lands
	}{
		{"earcon", 350 * time.Millisecond, 350 * time.Millisecond, 360 * time.Millisecond},
		{"a clip that goes on", time.Hour, holdMax, holdMax + 10*time.Millisecond},
		{"nothing", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				start := time.Now()
				hold := func() bool { return time.Since(start) < tc.sounding }
				spk := &writes{}
				pieces := make(chan []int16, 4)
				pieces <- make([]int16, 960)
				done := make(chan error, 1)
				go func() { done <- play(ctx, spk, pieces, nil, hold) }()
				for {
					synctest.Wait()
					if at, ok := spk.first(); ok {
						if d := at.Sub(start); d < tc.min || d > tc.max {
							t.Fatalf("first write after %v, want %v..%v", d, tc.min, tc.max)
						}
						break
					}
					time.Sleep(time.Millisecond)
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}
