//go:build linux && !noaec && !aec1

package echo

/*
#cgo pkg-config: webrtc-audio-processing
#cgo CXXFLAGS: -std=c++11
#cgo LDFLAGS: -lstdc++
#include "webrtc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// canceller is WebRTC's echo canceller from the audio processing module
// 0.3 (webrtc-audio-processing, as Debian 12 and Ubuntu 22.04 ship it),
// through a small C shim (webrtc.cc): the library made for the job, which
// `lk agent console` runs too.
// Chosen over speexdsp by measurement on the rig (docs/audio.md, "Echo
// cancellation"): it converged in 0.1 s where speexdsp took 1.0-1.35 s,
// and took out 34 dB of echo against 30.
type canceller struct{ h unsafe.Pointer }

// Available says whether this build has an echo canceller.
const Available = true

// Library is the echo canceller's library and API, for what the program
// says about itself (--version, the interface's header).
const Library = "webrtc-audio-processing 0.3"

func newCanceller() (engine, error) {
	h := C.voicetui_aec_new(C.int(rate))
	if h == nil {
		return nil, errors.New("echo: WebRTC's audio processing would not start")
	}
	return &canceller{h: h}, nil
}

// process cancels the echo of ref (what played, aligned: the echo comes
// margin later) in mic, into out; one frame each.
func (c *canceller) process(mic, ref, out []int16) error {
	if code := C.voicetui_aec_process(c.h, (*C.int16_t)(unsafe.Pointer(&mic[0])), (*C.int16_t)(unsafe.Pointer(&ref[0])),
		(*C.int16_t)(unsafe.Pointer(&out[0])), C.int(len(mic)), C.int(margin*1000/rate)); code != 0 {
		return fmt.Errorf("echo: WebRTC's audio processing failed (code %d)", int(code))
	}
	return nil
}

func (c *canceller) close() {
	if c.h != nil {
		C.voicetui_aec_free(c.h)
		c.h = nil
	}
}
