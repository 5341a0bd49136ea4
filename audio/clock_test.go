package audio

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestClockSinkTimeline(t *testing.T) {
	var mu sync.Mutex
	var heard []int16
	s, err := NewClockSink(Pipeline, func(p []int16) error {
		mu.Lock()
		heard = append(heard, p...)
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tone := make([]int16, 3200) // 200 ms
	for i := range tone {
		tone[i] = 1000
	}
	ctx := context.Background()
	s.Write(ctx, tone)
	if err := s.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // silence between
	s.Write(ctx, make([]int16, 16000))
	s.Flush() // cut off
	s.Drain(ctx)
	s.Close()
	mu.Lock()
	defer mu.Unlock()
	// The recording holds the tone in full, then silence: its length
	// follows the clock, not the amount written.
	n := 0
	for _, v := range heard {
		if v == 1000 {
			n++
		}
	}
	if n != len(tone) {
		t.Fatalf("%d tone samples recorded, want %d", n, len(tone))
	}
	if len(heard) < 3200+1600 || len(heard) > 16000 {
		t.Fatalf("%d samples recorded for about 0.3 s", len(heard))
	}
	if _, err := s.Write(ctx, tone); err == nil {
		t.Fatal("Write after Close")
	}
}
