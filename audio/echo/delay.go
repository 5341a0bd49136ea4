package echo

import (
	"math"
	"math/cmplx"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Delay estimation: where, in what played, is the echo the microphone
// hears? The generalized cross-correlation with phase transform
// (GCC-PHAT) of the two over a window finds it: every frequency weighs
// the same, so the peak is as sharp as the echo path's first arrival
// rather than as broad as speech's formants (a plain correlation of
// speech has neighbours within a couple of milliseconds nearly as high,
// and picked them). gonum's FFT does the transforms.

// minCorrelation is the plain normalized correlation at the peak below
// which it is not trusted (no echo: headphones; or the user talks over
// the agent).
const minCorrelation = 0.5

// delayEstimator keeps its FFT and buffers between measures.
type delayEstimator struct {
	fft        *fourier.FFT
	n          int
	a, b       []float64
	ca, cb     []complex128
	correlated []float64
}

// estimate finds lag such that mic[j] hears ref[off+j-lag], where ref
// holds off samples before mic's window and the window itself
// (len(ref) >= off+len(mic)), lag in [0, off]. It returns the lag and the
// normalized correlation there.
func (e *delayEstimator) estimate(mic, ref []int16, off int) (int, float64) {
	w := len(mic)
	n := 1
	for n < 2*w+off {
		n *= 2
	}
	if e.n != n {
		e.fft, e.n = fourier.NewFFT(n), n
		e.a, e.b = make([]float64, n), make([]float64, n)
		e.ca, e.cb = make([]complex128, n/2+1), make([]complex128, n/2+1)
		e.correlated = make([]float64, n)
	}
	clear(e.a)
	clear(e.b)
	for i, v := range mic {
		e.a[i] = float64(v)
	}
	for i, v := range ref[:off+w] {
		e.b[i] = float64(v)
	}
	e.fft.Coefficients(e.ca, e.a)
	e.fft.Coefficients(e.cb, e.b)
	// c(k) = sum_j mic[j] ref[j+k]: conj(A)·B, each bin brought to unit
	// magnitude.
	for i := range e.ca {
		x := cmplx.Conj(e.ca[i]) * e.cb[i]
		if m := cmplx.Abs(x); m > 1e-9 {
			x /= complex(m, 0)
		}
		e.ca[i] = x
	}
	e.fft.Sequence(e.correlated, e.ca)
	bestK, best := 0, math.Inf(-1)
	for k := 0; k <= off; k++ {
		if v := math.Abs(e.correlated[k]); v > best { // a speaker may invert
			bestK, best = k, v
		}
	}
	lag := off - bestK
	return lag, correlation(mic, ref[bestK:bestK+w])
}

// correlation is the normalized correlation of a and b (|r|).
func correlation(a, b []int16) float64 {
	var dot, ea, eb float64
	for i, v := range a {
		x, y := float64(v), float64(b[i])
		dot += x * y
		ea += x * x
		eb += y * y
	}
	if ea == 0 || eb == 0 {
		return 0
	}
	return math.Abs(dot) / math.Sqrt(ea*eb)
}
