package echo

/*
#cgo pkg-config: speexdsp
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

static int set_int(SpeexPreprocessState *st, int req, int v) { return speex_preprocess_ctl(st, req, &v); }
static int set_rate(SpeexEchoState *st, int v) { return speex_echo_ctl(st, SPEEX_ECHO_SET_SAMPLING_RATE, &v); }
*/
import "C"

import (
	"errors"
	"unsafe"
)

// canceller is speexdsp's echo canceller (MDF, an adaptive filter in the
// frequency domain) followed by its preprocessor, which suppresses the
// echo the filter leaves (and, with it, steady noise: speex applies
// residual echo suppression only with its denoiser on). Written as a thin
// cgo layer because speexdsp is the library made for the job and no Go
// package wraps its echo canceller.
type canceller struct {
	echo  *C.SpeexEchoState
	pre   *C.SpeexPreprocessState
	frame int
}

// newCanceller works on frames of frame samples at rate, with a filter
// tail samples long (the echo path's length after alignment). suppress
// turns on the preprocessor.
func newCanceller(rate, frame, tail int, suppress bool) (*canceller, error) {
	c := &canceller{frame: frame}
	c.echo = C.speex_echo_state_init(C.int(frame), C.int(tail))
	if c.echo == nil {
		return nil, errors.New("echo: speexdsp would not create an echo canceller")
	}
	C.set_rate(c.echo, C.int(rate))
	if suppress {
		c.pre = C.speex_preprocess_state_init(C.int(frame), C.int(rate))
		if c.pre == nil {
			c.close()
			return nil, errors.New("echo: speexdsp would not create a preprocessor")
		}
		C.speex_preprocess_ctl(c.pre, C.SPEEX_PREPROCESS_SET_ECHO_STATE, unsafe.Pointer(c.echo))
		C.set_int(c.pre, C.SPEEX_PREPROCESS_SET_DENOISE, 1)
		// Steady noise is taken down a little only: voice detection
		// follows the room's floor, and STT copes with noise.
		C.set_int(c.pre, C.SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, -6)
		C.set_int(c.pre, C.SPEEX_PREPROCESS_SET_AGC, 0)
	}
	return c, nil
}

// process cancels the echo of ref (what played) in mic, into out; all
// three are one frame long.
func (c *canceller) process(mic, ref, out []int16) {
	C.speex_echo_cancellation(c.echo, (*C.spx_int16_t)(unsafe.Pointer(&mic[0])),
		(*C.spx_int16_t)(unsafe.Pointer(&ref[0])), (*C.spx_int16_t)(unsafe.Pointer(&out[0])))
	if c.pre != nil {
		C.speex_preprocess_run(c.pre, (*C.spx_int16_t)(unsafe.Pointer(&out[0])))
	}
}

// reset forgets the echo path (after the alignment changed).
func (c *canceller) reset() { C.speex_echo_state_reset(c.echo) }

func (c *canceller) close() {
	if c.pre != nil {
		C.speex_preprocess_state_destroy(c.pre)
		c.pre = nil
	}
	if c.echo != nil {
		C.speex_echo_state_destroy(c.echo)
		c.echo = nil
	}
}
