package device

import "errors"

var (
	errMono = errors.New("capture delivers mono only")
	// ErrStalled means the input device stopped delivering audio.
	ErrStalled = errors.New("the device stopped delivering audio")
)
