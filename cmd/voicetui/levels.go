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
//
// The pump runs when the levels change, not on a clock: a ticker of its
// own woke the process 20 times a second while nothing was said or
// played, about a tenth of an idle session's CPU. The microphone's
// hook already runs at the capture's pace; the only clock left is the
// output meter's fall after a sound, while it falls.
type levels struct {
	mu      sync.Mutex
	in      audio.Levels
	out     float64   // the output meter's peak hold, in dBFS
	outAt   time.Time // when out was last set: it falls from there
	sentIn  float64
	sentOut float64
	changed chan struct{} // one pending wake for the pump
}

// Meter timing.
const (
	levelsEvery = 50 * time.Millisecond // at most 20 sends a second
	outputFall  = 120.0                 // dB a second the output meter falls once nothing plays
	levelsStep  = 0.5                   // dB: a smaller change is not sent
)

func newLevels() *levels {
	return &levels{out: audio.Silence, sentIn: audio.Silence, sentOut: audio.Silence, changed: make(chan struct{}, 1)}
}

// input and output are the conversation's InputLevel and OutputLevel hooks.
func (l *levels) input(in audio.Levels) {
	l.mu.Lock()
	l.in = audio.Levels{RMS: in.RMS, Peak: in.Peak, Bands: slices.Clone(in.Bands)}
	wake := math.Abs(in.RMS-l.sentIn) >= levelsStep
	l.mu.Unlock()
	if wake {
		l.wake()
	}
}

func (l *levels) output(db float64) {
	now := time.Now()
	l.mu.Lock()
	cur := l.outputAt(now)
	if db > cur {
		l.out, l.outAt, cur = db, now, db
	}
	wake := math.Abs(cur-l.sentOut) >= levelsStep
	l.mu.Unlock()
	if wake {
		l.wake()
	}
}

func (l *levels) wake() {
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// outputAt is the output meter at now, fallen since it was set; l.mu is
// held.
func (l *levels) outputAt(now time.Time) float64 {
	if l.out <= audio.Silence {
		return audio.Silence
	}
	return max(l.out-outputFall*now.Sub(l.outAt).Seconds(), audio.Silence)
}

// pump sends the levels until stop is closed.
func (l *levels) pump(stop <-chan struct{}, send func(ui.LevelMsg)) {
	fall := time.NewTimer(levelsEvery)
	fall.Stop()
	defer fall.Stop()
	var sent time.Time
	for {
		select {
		case <-stop:
			return
		case <-l.changed:
		case <-fall.C:
		}
		// At most one send per levelsEvery: what changes meanwhile waits
		// (one pending wake holds it).
		if wait := levelsEvery - time.Since(sent); wait > 0 {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
		}
		now := time.Now()
		l.mu.Lock()
		in, out := l.in, l.outputAt(now)
		due := math.Abs(in.RMS-l.sentIn) >= levelsStep || math.Abs(out-l.sentOut) >= levelsStep
		if due {
			l.sentIn, l.sentOut = in.RMS, out
		}
		l.mu.Unlock()
		if due {
			send(ui.LevelMsg{In: in, Out: out})
			sent = now
		}
		// While the output meter falls it is redrawn on a clock.
		if out > audio.Silence {
			fall.Reset(levelsEvery)
		}
	}
}
