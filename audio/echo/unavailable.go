//go:build (!linux && !aec1) || noaec

package echo

import "errors"

// Available says whether this build has an echo canceller. This one has
// none: it was built without webrtc-audio-processing, because the library
// was not found when it was built (scripts/aec-tags.sh then gives
// -tags noaec), or with -tags noaec by hand, or for a system other than
// Linux without -tags aec1. The other builds: webrtc.go (0.3, Linux) and
// webrtc1.go (1.x, -tags aec1).
const Available = false

// Library is the echo canceller's library and API: none here.
const Library = ""

func newCanceller() (engine, error) {
	return nil, errors.New("echo: no echo canceller in this build (built without webrtc-audio-processing)")
}
