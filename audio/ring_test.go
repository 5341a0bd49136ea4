package audio

import (
	"slices"
	"testing"
)

func TestRingWraparound(t *testing.T) {
	r := NewRing(5)
	if n := r.Write([]int16{1, 2, 3, 4}); n != 4 {
		t.Fatalf("first write took %d, want 4", n)
	}
	got := make([]int16, 3)
	if n := r.Read(got); n != 3 || !slices.Equal(got, []int16{1, 2, 3}) {
		t.Fatalf("read %d %v, want 3 [1 2 3]", n, got)
	}
	// head is at 3; this write wraps past the end of the backing array.
	if n := r.Write([]int16{5, 6, 7, 8, 9}); n != 4 {
		t.Fatalf("wrapping write took %d, want 4 (room for 4)", n)
	}
	if r.Len() != 5 {
		t.Fatalf("Len = %d, want 5", r.Len())
	}
	out := make([]int16, 10)
	n := r.Read(out)
	if want := []int16{4, 5, 6, 7, 8}; !slices.Equal(out[:n], want) {
		t.Fatalf("wrapped read %v, want %v", out[:n], want)
	}
}

func TestRingUnderrunAndReset(t *testing.T) {
	r := NewRing(8)
	out := make([]int16, 4)
	if n := r.Read(out); n != 0 {
		t.Fatalf("empty ring read %d samples", n)
	}
	r.Write([]int16{1, 2})
	if n := r.Read(out); n != 2 {
		t.Fatalf("short read = %d, want 2 (underrun must not invent samples)", n)
	}
	r.Write([]int16{3, 4, 5})
	r.Reset()
	if n := r.Read(out); n != 0 || r.Len() != 0 {
		t.Fatalf("after Reset read %d, Len %d; want 0, 0", n, r.Len())
	}
	// After a reset the ring is usable from index 0 again.
	r.Write([]int16{6, 7})
	if n := r.Read(out); n != 2 || out[0] != 6 || out[1] != 7 {
		t.Fatalf("after reset got %v", out[:n])
	}
}

func TestRingConcurrentOrder(t *testing.T) {
	// One writer, one reader: every sample arrives once, in order.
	const total = 100000
	r := NewRing(97)
	done := make(chan struct{})
	go func() {
		defer close(done)
		next := int16(0)
		buf := make([]int16, 13)
		for i := 0; i < total; {
			k := min(len(buf), total-i)
			for j := range k {
				buf[j] = next + int16(j)
			}
			n := r.Write(buf[:k])
			next += int16(n)
			i += n
		}
	}()
	want := int16(0)
	buf := make([]int16, 11)
	for got := 0; got < total; {
		n := r.Read(buf)
		for _, s := range buf[:n] {
			if s != want {
				t.Fatalf("sample %d = %d, want %d", got, s, want)
			}
			want++
			got++
		}
	}
	<-done
}
