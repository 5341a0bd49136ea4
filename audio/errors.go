package audio

import "errors"

// Sentinels shared by the device back ends, so callers can tell what went
// wrong with errors.Is whatever back end raised it.
var (
	ErrNoInputDevice  = errors.New("no usable input device")
	ErrNoOutputDevice = errors.New("no usable output device")
	ErrUnknownDevice  = errors.New("no device matches")
	ErrClosed         = errors.New("audio: closed")
)

// DeviceError says which device failed and why. Its message is one line a
// user can act on: it names the device and suggests `voicetui devices`.
type DeviceError struct {
	Direction string // "input" or "output"
	Device    string // the device's name or the user's selector
	Op        string // what was attempted: "open", "start", "select"
	Err       error
}

func (e *DeviceError) Error() string {
	dev := e.Device
	if dev == "" {
		dev = "(default)"
	}
	return e.Direction + " device " + quote(dev) + ": " + e.Op + ": " + e.Err.Error() +
		" (run `voicetui devices` to list devices, then pick one with --" + e.Direction + "-device)"
}

func (e *DeviceError) Unwrap() error { return e.Err }

func quote(s string) string { return "\"" + s + "\"" }
