package audio

import (
	"fmt"
	"math"
	"testing"
)

var rates = []int{16000, 22050, 24000, 44100, 48000}

func sine(rate int, freq, amp float64, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(math.Round(amp * 32767 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate))))
	}
	return s
}

// toneSNR fits a sine of freq to x (least squares on sin and cos) and
// returns the fitted amplitude (full scale = 1) and the ratio of the fit's
// power to the residual's, in dB.
func toneSNR(x []int16, rate int, freq float64) (amp, snr float64) {
	var ss, sc, cc, xs, xc float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		s, c := math.Sin(w), math.Cos(w)
		ss += s * s
		sc += s * c
		cc += c * c
		xs += float64(v) * s
		xc += float64(v) * c
	}
	det := ss*cc - sc*sc
	a := (xs*cc - xc*sc) / det
	b := (xc*ss - xs*sc) / det
	var sig, noise float64
	for i, v := range x {
		w := 2 * math.Pi * freq * float64(i) / float64(rate)
		fit := a*math.Sin(w) + b*math.Cos(w)
		sig += fit * fit
		noise += (float64(v) - fit) * (float64(v) - fit)
	}
	return math.Hypot(a, b) / 32767, 10 * math.Log10(sig/noise)
}

func rms(x []int16) float64 {
	var sum float64
	for _, v := range x {
		sum += float64(v) * float64(v)
	}
	return math.Sqrt(sum / float64(max(len(x), 1)))
}

// resampleChunks feeds src through r in uneven chunks, as a device would.
func resampleChunks(r *Resampler, src []int16) []int16 {
	var out []int16
	for i, step := 0, 0; i < len(src); i += step {
		step = min(97+i%331, len(src)-i)
		out = r.Process(out, src[i:i+step])
	}
	return out
}

func TestResamplerKeepsToneClean(t *testing.T) {
	for _, in := range rates {
		for _, out := range rates {
			if in == out {
				continue
			}
			for _, freq := range []float64{440, 1000, 0.4 * float64(min(in, out))} {
				t.Run(fmt.Sprintf("%d-%d-%.0fHz", in, out, freq), func(t *testing.T) {
					r, err := NewResampler(in, out)
					if err != nil {
						t.Fatal(err)
					}
					y := resampleChunks(r, sine(in, freq, 0.5, in)) // one second
					if want := out; abs(len(y)-want) > 2 {
						t.Fatalf("got %d samples for 1 s, want %d", len(y), want)
					}
					// Skip the filter's start-up and tail transients.
					skip := r.Delay() + 64
					amp, snr := toneSNR(y[skip:len(y)-skip], out, freq)
					if snr < 60 {
						t.Errorf("SNR %.1f dB, want >= 60", snr)
					}
					if math.Abs(amp-0.5) > 0.01 {
						t.Errorf("amplitude %.4f, want 0.5 (pass band must be flat)", amp)
					}
				})
			}
		}
	}
}

func TestResamplerRejectsAboveNyquist(t *testing.T) {
	for _, tc := range []struct{ in, out int }{{48000, 16000}, {44100, 16000}, {48000, 22050}, {24000, 16000}, {22050, 16000}} {
		// 0.7 of the new rate lies above its Nyquist frequency; without a
		// band limit it would fold back to 0.3 of the new rate.
		freq := 0.7 * float64(tc.out)
		t.Run(fmt.Sprintf("%d-%d", tc.in, tc.out), func(t *testing.T) {
			r, err := NewResampler(tc.in, tc.out)
			if err != nil {
				t.Fatal(err)
			}
			x := sine(tc.in, freq, 0.5, tc.in)
			y := resampleChunks(r, x)
			skip := r.Delay() + 64
			atten := 20 * math.Log10(rms(y[skip:len(y)-skip])/rms(x))
			if atten > -60 {
				t.Errorf("tone at %.0f Hz only attenuated %.1f dB, want <= -60", freq, atten)
			}
		})
	}
}

func TestResamplerPassThroughAndErrors(t *testing.T) {
	r, err := NewResampler(16000, 16000)
	if err != nil {
		t.Fatal(err)
	}
	x := []int16{1, -2, 3}
	if y := r.Process(nil, x); len(y) != 3 || y[1] != -2 {
		t.Fatalf("pass-through changed samples: %v", y)
	}
	if _, err := NewResampler(0, 16000); err == nil {
		t.Fatal("zero rate accepted")
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func BenchmarkResample(b *testing.B) {
	for _, tc := range []struct{ in, out int }{{48000, 16000}, {16000, 48000}, {22050, 48000}, {24000, 48000}, {44100, 16000}} {
		b.Run(fmt.Sprintf("%d-%d", tc.in, tc.out), func(b *testing.B) {
			r, _ := NewResampler(tc.in, tc.out)
			chunk := sine(tc.in, 1000, 0.5, tc.in/50) // 20 ms buffers
			dst := make([]int16, 0, r.OutLen(len(chunk)))
			b.ReportAllocs()
			b.SetBytes(int64(len(chunk) * 2))
			b.ResetTimer()
			for b.Loop() {
				dst = r.Process(dst[:0], chunk)
			}
			// Seconds of audio converted per second of CPU.
			b.ReportMetric(float64(b.N)*0.020/b.Elapsed().Seconds(), "x_realtime")
		})
	}
}
