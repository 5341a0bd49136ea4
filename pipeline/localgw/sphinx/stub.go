//go:build !(cgo && unix)

package sphinx

import "fmt"

// Without cgo, or off Unix (no dlopen), the library cannot be reached:
// the same API, always unavailable, so callers need no build tags.

func unavailable() error {
	return fmt.Errorf("sphinx: %w: this build has no cgo or no dlopen", ErrUnavailable)
}

// Available always reports ErrUnavailable in this build.
func Available() error { return unavailable() }

// Decoder is unusable in this build: New always fails.
type Decoder struct{}

func New(Config) (*Decoder, error)        { return nil, unavailable() }
func (*Decoder) Start() error             { return unavailable() }
func (*Decoder) Write([]int16) error      { return unavailable() }
func (*Decoder) Partial() (string, error) { return "", unavailable() }
func (*Decoder) End() (string, error)     { return "", unavailable() }
func (*Decoder) Close() error             { return nil }
func (*Decoder) reset() bool              { return false }
