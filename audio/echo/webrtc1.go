//go:build aec1 && !noaec

package echo

/*
#cgo pkg-config: webrtc-audio-processing-1
#cgo CXXFLAGS: -std=c++17
// No -lstdc++ as in webrtc.go: the go command links a package with C++
// files through the C++ compiler anyway, and macOS has no libstdc++.
#include "webrtc.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// canceller is WebRTC's echo canceller from the audio processing module
// 1.x (webrtc-audio-processing-1: Debian 13, current Ubuntu, Homebrew),
// through a small C shim (webrtc1.cc) with the same C face as 0.3's
// (webrtc.h). 1.x has AEC3 instead of 0.3's canceller, with neither the
// extended filter nor the suppression level webrtc.cc sets (webrtc1.cc
// says what differs); the measurements in docs/audio.md are 0.3's.
type canceller struct{ h unsafe.Pointer }

// Available says whether this build has an echo canceller.
const Available = true

// Library is the echo canceller's library and API, for what the program
// says about itself (--version, the interface's header).
const Library = "webrtc-audio-processing 1.x"

func newCanceller() (engine, error) {
	h := C.voicetui_aec_new(C.int(rate))
	if h == nil {
		return nil, errors.New("echo: WebRTC's audio processing (1.x) would not start")
	}
	return &canceller{h: h}, nil
}

// process cancels the echo of ref (what played, aligned: the echo comes
// margin later) in mic, into out; one frame each.
func (c *canceller) process(mic, ref, out []int16) error {
	if code := C.voicetui_aec_process(c.h, (*C.int16_t)(unsafe.Pointer(&mic[0])), (*C.int16_t)(unsafe.Pointer(&ref[0])),
		(*C.int16_t)(unsafe.Pointer(&out[0])), C.int(len(mic)), C.int(margin*1000/rate)); code != 0 {
		return fmt.Errorf("echo: WebRTC's audio processing (1.x) failed (code %d)", int(code))
	}
	return nil
}

func (c *canceller) close() {
	if c.h != nil {
		C.voicetui_aec_free(c.h)
		c.h = nil
	}
}
