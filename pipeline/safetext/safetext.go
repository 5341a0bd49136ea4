// Package safetext makes untrusted text (gateway hints, transcripts,
// replies, error bodies) safe to put on a terminal. It only makes text
// inert; it never changes what the text says (redacting credentials is
// the provider clients' job, and only in what their errors carry).
package safetext

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Sanitize makes untrusted text safe for a terminal line: escape
// sequences are removed, other control characters become spaces, runs of
// space collapse, bidi controls are dropped, and the result is cut to
// limit runes (an ellipsis marks the cut).
func Sanitize(s string, limit int) string {
	s = ansi.Strip(strings.ToValidUTF8(s, "?"))
	var b strings.Builder
	n := 0
	space := false
	for _, r := range s {
		if unicode.Is(unicode.Bidi_Control, r) {
			continue // would reorder what follows on the screen
		}
		if unicode.IsControl(r) || unicode.IsSpace(r) || r == '\u2028' || r == '\u2029' {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
			n++
		}
		if n >= limit {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// Inert makes streamed untrusted text (an LLM reply, piece by piece)
// inert in a terminal without reflowing it: control characters other than
// newline and tab are dropped, so an escape sequence split across pieces
// is left as harmless printable text.
func Inert(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) && utf8.ValidString(s) {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unsafeRune(r) || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
}

func unsafeRune(r rune) bool {
	return unicode.IsControl(r) && r != '\n' && r != '\t' || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r)
}
