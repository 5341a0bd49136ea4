package audio

import (
	"math"
	"slices"
	"testing"
)

func TestRMS(t *testing.T) {
	if got := RMS(make([]int16, 100)); got != Silence {
		t.Errorf("silence = %.1f dBFS, want %.0f", got, Silence)
	}
	if got := RMS(sine(16000, 1000, 1, 16000)); math.Abs(got+3.01) > 0.05 {
		t.Errorf("full-scale sine = %.2f dBFS, want -3.01", got)
	}
	if got := RMS(sine(16000, 1000, 0.1, 16000)); math.Abs(got+23.01) > 0.05 {
		t.Errorf("-20 dB sine = %.2f dBFS, want -23.01", got)
	}
}

func TestMeterBands(t *testing.T) {
	const rate = 16000
	m := NewMeter(rate, 8)
	for _, freq := range []float64{150, 1000, 6000} {
		lv := m.Update(sine(rate, freq, 0.5, 2048))
		loudest := 0
		for b, v := range lv.Bands {
			if v > lv.Bands[loudest] {
				loudest = b
			}
		}
		// The tone's band must carry it, and be far above the others.
		lo := 100 * math.Pow(80, float64(loudest)/8)
		hi := 100 * math.Pow(80, float64(loudest+1)/8)
		if freq < lo*0.9 || freq > hi*1.1 {
			t.Errorf("%.0f Hz: loudest band %d covers %.0f-%.0f Hz", freq, loudest, lo, hi)
		}
		if math.Abs(lv.Bands[loudest]-(-9)) > 3 {
			t.Errorf("%.0f Hz: band level %.1f dBFS, want about -9 (a -6 dB sine)", freq, lv.Bands[loudest])
		}
		if math.Abs(lv.RMS-(-9.03)) > 0.2 || math.Abs(lv.Peak-(-6.02)) > 0.1 {
			t.Errorf("%.0f Hz: RMS %.2f peak %.2f, want -9.03 and -6.02", freq, lv.RMS, lv.Peak)
		}
	}
	lv := m.Update(make([]int16, 512))
	for b, v := range lv.Bands {
		if v != Silence {
			t.Errorf("silence: band %d reads %.1f", b, v)
		}
	}
}

func BenchmarkMeter(b *testing.B) {
	m := NewMeter(16000, 14)
	chunk := sine(16000, 440, 0.5, 320)
	b.ReportAllocs()
	for b.Loop() {
		m.Update(chunk)
	}
}

func TestVoiceDetector(t *testing.T) {
	d := NewVoiceDetector(16000)
	var verdicts []bool
	feed := func(p []int16) {
		// Odd piece sizes: frames must still be whole.
		for i := 0; i < len(p); i += 333 {
			d.Feed(p[i:min(i+333, len(p))], func(v bool, _ float64) { verdicts = append(verdicts, v) })
		}
	}
	noise := func(n int, amp float64) []int16 {
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(amp * math.Sin(float64(i)*0.37) * math.Sin(float64(i)*0.011))
		}
		return out
	}
	feed(noise(16000, 30)) // 1 s of quiet room (about -63 dBFS)
	feed(noise(16000, 6000))
	quiet, loud := verdicts[:50], verdicts[50:]
	for i, v := range quiet {
		if v {
			t.Fatalf("quiet frame %d counted as voice", i)
		}
	}
	for i, v := range loud {
		if !v {
			t.Fatalf("loud frame %d not counted as voice", i)
		}
	}
	if len(verdicts) != 100 {
		t.Fatalf("%d frames for 2 s", len(verdicts))
	}
	// A steady noise, however loud, becomes the floor within 3 s.
	verdicts = nil
	feed(noise(4*16000, 6000))
	if slices.Contains(verdicts[160:], true) {
		t.Fatalf("steady noise still counts as voice after 3 s: floor %.1f", d.Floor())
	}
	// Boost raises the bar (half-duplex).
	d = NewVoiceDetector(16000)
	feed(noise(16000, 30))
	d.Boost = 40
	verdicts = nil
	feed(noise(1600, 6000))
	if verdicts[0] {
		t.Fatal("boosted threshold still counts the same level as voice")
	}
}
