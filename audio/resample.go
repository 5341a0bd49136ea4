package audio

import (
	"fmt"
	"math"
)

// Resampler converts mono 16-bit PCM between sample rates with a polyphase
// windowed-sinc (Kaiser) low-pass filter: band-limited, so a tone keeps more
// than 60 dB SNR and content above the lower rate's Nyquist frequency is
// rejected instead of aliasing back into the speech band.
//
// Hand-written on purpose: no maintained pure-Go band-limited resampler is
// served to us (github.com/zaf/resample, a libsoxr binding, is not
// available; beep's resampler interpolates, it does not band-limit), and a
// polyphase FIR is short, allocation-free per call and easy to test.
type Resampler struct {
	in, out int // sample rates
	up, dn  int // out/in reduced to up/dn
	taps    int // filter taps per phase
	coef    []float32
	hist    []float32 // last taps-1 inputs, then the current chunk
	idx     int       // index in hist of the newest input the next output uses
	phase   int       // 0 <= phase < up
}

// zeroCrossings is the sinc's half-width, counted in samples of the lower
// of the two rates. 32 gives a transition band of about 8% of that rate
// with a Kaiser beta of 8 (about 80 dB stop-band attenuation).
const (
	zeroCrossings = 32
	kaiserBeta    = 8.0
	cutoff        = 0.46 // of the lower rate, just below its Nyquist (0.5)
)

// NewResampler returns a converter from inRate to outRate (mono). Equal
// rates give a pass-through.
func NewResampler(inRate, outRate int) (*Resampler, error) {
	if inRate <= 0 || outRate <= 0 {
		return nil, fmt.Errorf("audio: resample %d Hz -> %d Hz: rates must be positive", inRate, outRate)
	}
	g := gcd(inRate, outRate)
	r := &Resampler{in: inRate, out: outRate, up: outRate / g, dn: inRate / g}
	if r.up > 4096 {
		return nil, fmt.Errorf("audio: resample %d Hz -> %d Hz: ratio %d/%d too fine", inRate, outRate, r.up, r.dn)
	}
	if r.up == 1 && r.dn == 1 {
		return r, nil
	}
	// Prototype filter at the up-sampled rate up*inRate, stored phase-major
	// so each output sample reads one contiguous run of coefficients, and
	// each run reversed so it lines up with the inputs (oldest first).
	lower := min(inRate, outRate)
	ratio := float64(r.up) * float64(inRate) / float64(lower) // up-sampled samples per lower-rate sample
	half := int(math.Ceil(zeroCrossings * ratio))
	r.taps = (2*half + r.up - 1) / r.up
	n := r.taps * r.up
	fc := cutoff / ratio // cycles per up-sampled sample
	center := float64(n-1) / 2
	proto := make([]float64, n)
	for i := range proto {
		x := float64(i) - center
		w := kaiser(x/(center+1), kaiserBeta)
		proto[i] = 2 * fc * sinc(2*fc*x) * w * float64(r.up)
	}
	r.coef = make([]float32, n)
	for p := 0; p < r.up; p++ {
		for k := 0; k < r.taps; k++ {
			r.coef[p*r.taps+r.taps-1-k] = float32(proto[p+k*r.up])
		}
	}
	r.Reset()
	return r, nil
}

// Delay is the filter's group delay in output samples: a sample fed at input
// index i comes out around output index i*out/in + Delay.
func (r *Resampler) Delay() int {
	if r.taps == 0 {
		return 0
	}
	return int(math.Round(float64(r.taps*r.up-1) / 2 / float64(r.dn)))
}

// Reset forgets the signal history.
func (r *Resampler) Reset() {
	if r.taps == 0 {
		return
	}
	r.hist = make([]float32, r.taps-1, r.taps-1+4096)
	r.idx = r.taps - 1
	r.phase = 0
}

// OutLen is an upper bound on the samples Process produces for n inputs.
func (r *Resampler) OutLen(n int) int {
	return int(int64(n)*int64(r.up)/int64(r.dn)) + 2
}

// Process converts src and appends the result to dst. State carries over
// between calls, so a stream can be fed in chunks of any size.
func (r *Resampler) Process(dst []int16, src []int16) []int16 {
	if r.taps == 0 {
		return append(dst, src...)
	}
	for _, s := range src {
		r.hist = append(r.hist, float32(s))
	}
	for r.idx < len(r.hist) {
		c := r.coef[r.phase*r.taps : (r.phase+1)*r.taps]
		x := r.hist[r.idx-r.taps+1 : r.idx+1]
		dst = append(dst, clamp16(dot(c, x)))
		r.phase += r.dn
		r.idx += r.phase / r.up
		r.phase %= r.up
	}
	// Keep the last taps-1 inputs as history for the next call.
	keep := r.taps - 1
	drop := len(r.hist) - keep
	copy(r.hist, r.hist[drop:])
	r.hist = r.hist[:keep]
	r.idx -= drop
	return dst
}

// dot is the sum of c[k]*x[k] (len(x) >= len(c)), in four running sums:
// one sum is a chain of dependent additions, four keep the processor's
// adders busy (the filter has 64 to 192 taps: 1.3 to 1.5x faster).
func dot(c, x []float32) float32 {
	x = x[:len(c)]
	var a0, a1, a2, a3 float32
	for len(c) >= 4 {
		a0 += c[0] * x[0]
		a1 += c[1] * x[1]
		a2 += c[2] * x[2]
		a3 += c[3] * x[3]
		c, x = c[4:], x[4:len(c)]
	}
	for k, v := range c {
		a0 += v * x[k]
	}
	return (a0 + a1) + (a2 + a3)
}

func clamp16(v float32) int16 {
	v = float32(math.Round(float64(v)))
	if v > math.MaxInt16 {
		return math.MaxInt16
	}
	if v < math.MinInt16 {
		return math.MinInt16
	}
	return int16(v)
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// kaiser is the Kaiser window at t in [-1, 1].
func kaiser(t, beta float64) float64 {
	if t < -1 || t > 1 {
		return 0
	}
	return bessel0(beta*math.Sqrt(1-t*t)) / bessel0(beta)
}

// bessel0 is the zeroth-order modified Bessel function of the first kind.
func bessel0(x float64) float64 {
	sum, term := 1.0, 1.0
	for k := 1; k < 50; k++ {
		term *= (x / (2 * float64(k))) * (x / (2 * float64(k)))
		sum += term
		if term < 1e-12*sum {
			break
		}
	}
	return sum
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
