package main

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/ui"
)

// levels keeps the latest meter levels a conversation reports; pump sends
// them to the interface at most 20 times a second, and only when the
// meters would change, so neither side waits for the other.
type levels struct {
	mu  sync.Mutex
	in  audio.Levels
	out float64
}

func newLevels() *levels { return &levels{out: audio.Silence} }

// input and output are the conversation's InputLevel and OutputLevel hooks.
func (l *levels) input(in audio.Levels) {
	l.mu.Lock()
	l.in = audio.Levels{RMS: in.RMS, Peak: in.Peak, Bands: slices.Clone(in.Bands)}
	l.mu.Unlock()
}

func (l *levels) output(db float64) {
	l.mu.Lock()
	l.out = max(l.out, db)
	l.mu.Unlock()
}

// pump sends the levels until stop is closed.
func (l *levels) pump(stop <-chan struct{}, send func(ui.LevelMsg)) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	sentIn, sentOut := audio.Silence, audio.Silence
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		in, out := l.in, l.out
		l.out = max(l.out-6, audio.Silence) // falls back when nothing plays
		l.mu.Unlock()
		if math.Abs(in.RMS-sentIn) < 0.5 && math.Abs(out-sentOut) < 0.5 {
			continue
		}
		sentIn, sentOut = in.RMS, out
		send(ui.LevelMsg{In: in, Out: out})
	}
}
