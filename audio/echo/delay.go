package echo

import "math"

// Delay estimation: where, in what played, is the echo the microphone
// hears? The normalized cross-correlation of the two over a window finds
// it: first at 4 kHz over every lag up to maxLag (cheap, and the peak of
// speech is broad enough), then at 16 kHz around the coarse peak. Written
// by hand: the search is a few loops, and Go has no library for it that
// would not bring an FFT package for a 3-million-multiply job run twice a
// second while the agent speaks.

// decimation of the coarse search.
const decimation = 4

// minCorrelation is the normalized correlation below which a peak is not
// trusted (no echo: headphones; or the user talks over the agent).
const minCorrelation = 0.3

// estimateDelay finds lag such that mic[j] hears ref[off+j-lag], where ref
// holds off samples before mic's window and the window itself
// (len(ref) >= off+len(mic)). It returns the lag and its correlation.
func estimateDelay(mic, ref []int16, off int) (int, float64) {
	// Pre-emphasis flattens speech's spectrum: its strong low harmonics
	// would otherwise make peaks a pitch period away nearly as high.
	m, r := emphasize(mic), emphasize(ref)
	coarse, _ := bestLag(decimate(m), decimate(r), off/decimation, 0, off/decimation)
	lo := max(coarse*decimation-2*decimation, 0)
	hi := min(coarse*decimation+2*decimation, off)
	return bestLag(m, r, off, lo, hi)
}

// emphasize is x[n] - 0.9 x[n-1].
func emphasize(p []int16) []float64 {
	out := make([]float64, len(p))
	prev := 0.0
	for i, v := range p {
		x := float64(v)
		out[i] = x - 0.9*prev
		prev = x
	}
	return out
}

// bestLag scans lags lo..hi of mic against ref (mic[j] ~ ref[off+j-lag])
// and returns the one with the highest normalized correlation.
func bestLag(mic, ref []float64, off, lo, hi int) (int, float64) {
	var em float64
	for _, v := range mic {
		em += v * v
	}
	best, bestC := lo, 0.0
	if em == 0 {
		return best, 0
	}
	n := len(mic)
	for lag := lo; lag <= hi; lag++ {
		seg := ref[off-lag : off-lag+n]
		var dot, er float64
		for j, v := range mic {
			x := seg[j]
			dot += v * x
			er += x * x
		}
		if er == 0 {
			continue
		}
		if c := math.Abs(dot) / math.Sqrt(em*er); c > bestC { // a speaker may invert
			best, bestC = lag, c
		}
	}
	return best, bestC
}

// decimate averages groups of decimation samples: a crude low-pass that
// keeps what a correlation of speech needs.
func decimate(p []float64) []float64 {
	out := make([]float64, len(p)/decimation)
	for i := range out {
		var s float64
		for _, v := range p[i*decimation : (i+1)*decimation] {
			s += v
		}
		out[i] = s
	}
	return out
}
