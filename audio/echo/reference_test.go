package echo

import (
	"testing"
	"time"
)

// The reference keeps the last refKeep samples played, across the ring's
// end, and silence where the device paused.
func TestReferenceKeepsWhatPlayedAcrossTheRingsEnd(t *testing.T) {
	r := NewReference()
	const chunk = rate / 10 // 100 ms at the timeline's rate: no resampling
	at := r.epoch.Add(time.Second)
	var played []int16
	for k := range 65 { // 6.5 s: more than the ring holds, and the pause below crosses its end
		p := make([]int16, chunk)
		for i := range p {
			p[i] = int16(1 + (k*chunk+i)%30000)
		}
		r.Played(p, rate, at)
		played = append(played, p...)
		at = at.Add(100 * time.Millisecond)
	}
	end := r.next
	got := make([]int16, refKeep)
	r.read(end-refKeep, got)
	want := played[len(played)-refKeep:]
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("sample %d of the last %d: %d, want %d", i, refKeep, got[i], want[i])
		}
	}

	// The device pauses for a second, then plays again: silence between.
	at = at.Add(time.Second)
	p := make([]int16, chunk)
	for i := range p {
		p[i] = 7
	}
	r.Played(p, rate, at)
	got = make([]int16, 2*rate)
	r.read(end-rate/2, got)
	for i, v := range got {
		var want int16
		switch pos := end - rate/2 + int64(i); {
		case pos < end:
			want = played[len(played)-int(end-pos)]
		case pos >= r.next-chunk && pos < r.next:
			want = 7
		}
		if v != want {
			t.Fatalf("position %d (%d after the pause began): %d, want %d", end-rate/2+int64(i), int64(i)-rate/2, v, want)
		}
	}
}
