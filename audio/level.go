package audio

import (
	"math"
	"math/cmplx"

	"gonum.org/v1/gonum/dsp/fourier"
)

// Silence is the level reported for digital silence, in dBFS.
const Silence = -96.0

// RMS returns the root-mean-square level of p in dBFS (0 dBFS is a
// full-scale square wave; a full-scale sine reads about -3 dBFS).
func RMS(p []int16) float64 {
	if len(p) == 0 {
		return Silence
	}
	var sum float64
	for _, v := range p {
		f := float64(v) / 32768
		sum += f * f
	}
	return max(Silence, 10*math.Log10(sum/float64(len(p))))
}

// Meter measures the level of a mono stream and its energy in a few
// log-spaced frequency bands, for a level meter display. It is not safe for
// concurrent use: feed it from the goroutine that reads the audio.
type Meter struct {
	rate   int
	fft    *fourier.FFT
	win    []float64 // Hann window
	frame  []float64 // last len(win) samples, oldest first
	buf    []float64 // frame times window, the FFT's input
	coef   []complex128
	edges  []int // FFT bin boundaries of the bands
	levels Levels
}

// Levels is one reading of a Meter.
type Levels struct {
	RMS   float64   // dBFS of the last window
	Peak  float64   // dBFS of the largest sample in the last window
	Bands []float64 // per band, dBFS of its energy, low to high
}

// NewMeter returns a meter for mono audio at rate with n bands spread
// logarithmically from 100 Hz to min(8 kHz, Nyquist).
func NewMeter(rate, n int) *Meter {
	const size = 512
	m := &Meter{
		rate:  rate,
		fft:   fourier.NewFFT(size),
		win:   make([]float64, size),
		frame: make([]float64, size),
		buf:   make([]float64, size),
		coef:  make([]complex128, size/2+1),
	}
	for i := range m.win {
		m.win[i] = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(size-1))
	}
	lo, hi := 100.0, math.Min(8000, float64(rate)/2)
	m.edges = make([]int, n+1)
	for i := range m.edges {
		f := lo * math.Pow(hi/lo, float64(i)/float64(n))
		m.edges[i] = min(size/2, max(1, int(math.Round(f*size/float64(rate)))))
	}
	m.levels.Bands = make([]float64, n)
	return m
}

// Update feeds p (mono samples) and returns the levels of the most recent
// window. The returned Bands slice is reused by the next call.
func (m *Meter) Update(p []int16) Levels {
	if len(p) >= len(m.frame) {
		p = p[len(p)-len(m.frame):]
		for i, v := range p {
			m.frame[i] = float64(v) / 32768
		}
	} else {
		copy(m.frame, m.frame[len(p):])
		off := len(m.frame) - len(p)
		for i, v := range p {
			m.frame[off+i] = float64(v) / 32768
		}
	}
	var sum, peak float64
	for _, v := range m.frame {
		sum += v * v
		peak = math.Max(peak, math.Abs(v))
	}
	m.levels.RMS = max(Silence, 10*math.Log10(sum/float64(len(m.frame))))
	m.levels.Peak = max(Silence, 20*math.Log10(peak))

	for i, v := range m.frame {
		m.buf[i] = v * m.win[i]
	}
	m.coef = m.fft.Coefficients(m.coef, m.buf)
	// Scale so a full-scale sine inside a band reads about -3 dBFS.
	norm := 4.0 / float64(len(m.frame)) / 2
	for b := range m.levels.Bands {
		var e float64
		for k := m.edges[b]; k < max(m.edges[b+1], m.edges[b]+1); k++ {
			a := cmplx.Abs(m.coef[k]) * norm
			e += a * a
		}
		m.levels.Bands[b] = max(Silence, 10*math.Log10(e))
	}
	return m.levels
}
