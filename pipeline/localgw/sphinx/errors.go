package sphinx

import (
	"errors"
	"regexp"
)

// ErrUnavailable is wrapped by every error that means recognition cannot
// run on this machine: no cgo, the library or the default model missing,
// or a library of another API (Homebrew ships 5.x, never opened).
var ErrUnavailable = errors.New("pocketsphinx unavailable")

// ErrClosed is returned by a Decoder's methods after Close.
var ErrClosed = errors.New("sphinx: decoder closed")

// ErrPoolClosed is returned by Pool.Get and Pool.Warm after Pool.Close.
var ErrPoolClosed = errors.New("sphinx: pool closed")

// installHint ends every ErrUnavailable message.
const installHint = "install libpocketsphinx3 pocketsphinx-en-us (scripts/setup.sh)"

// Error is a failure the library reported in its log during one call.
// The library gives no cause to unwrap.
type Error struct {
	Op      string // "new", "start", "write", "end"
	Message string // the call's last ERROR line, without its location
	Source  string // that line's place in the library's source: "acmod.c:120"
	// First is the call's first ERROR line, location included, when it
	// differs from the last: the last is often a summary ("Failed to read
	// acoustic model") and the first its reason.
	First string
	// Fatal: the library gave up (its E_FATAL, which would have exited
	// the process). What the call had allocated is leaked; a decoder it
	// happened to is abandoned rather than freed.
	Fatal bool
}

func (e *Error) Error() string {
	s := "sphinx: " + e.Op + ": " + e.Message
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	if e.First != "" {
		s += "; first error: " + e.First
	}
	return s
}

// logLine matches the library's error lines: `ERROR: "acmod.c", line 78: text`.
var logLine = regexp.MustCompile(`^(?:ERROR|FATAL|SYSTEM_ERROR|FATAL_SYSTEM_ERROR): "([^"]*)", line (\d+): (?s:(.*))$`)

// split separates a log line into its text and location.
func split(line string) (msg, source string) {
	if m := logLine.FindStringSubmatch(line); m != nil {
		return m[3], m[1] + ":" + m[2]
	}
	return line, ""
}

// libError is the *Error of a failed call from its first and last error
// lines.
func libError(op, first, last string, fatal bool) *Error {
	e := &Error{Op: op, Fatal: fatal}
	e.Message, e.Source = split(last)
	if e.Message == "" {
		e.Message = "failed (the library logged no error)"
	}
	if first != last {
		msg, src := split(first)
		if src != "" {
			msg += " (" + src + ")"
		}
		e.First = msg
	}
	return e
}
