//go:build !linux || noaec

package echo

import "errors"

// Available says whether this build has an echo canceller: WebRTC's
// audio processing 0.3 is what Debian 12 and Ubuntu 22.04 ship;
// Homebrew's 1.x has another API. Build with -tags noaec where the
// library is missing.
const Available = false

func newCanceller() (engine, error) {
	return nil, errors.New("echo: no echo canceller in this build (Linux only: WebRTC audio processing 0.3)")
}
