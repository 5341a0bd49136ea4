package pipeline

import (
	"regexp"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/charmbracelet/x/ansi"
)

// Sanitize makes untrusted text safe for a terminal: escape sequences are
// removed, other control characters become spaces, runs of space collapse,
// credentials are redacted, and the result is cut to limit runes.
func Sanitize(s string, limit int) string {
	// Redact before cutting: a secret cut in half would show its start.
	s = Redact(ansi.Strip(strings.ToValidUTF8(s, "?")))
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
	return Redact(b.String())
}

// SafeText makes streamed untrusted text (an LLM reply, piece by piece)
// inert in a terminal without reflowing it: control characters other than
// newline and tab are dropped, so an escape sequence split across pieces
// is left as harmless printable text.
func SafeText(s string) string {
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

var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/=-]+`),
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`), // a JWT
	regexp.MustCompile(`sk-[A-Za-z0-9_-]{8,}`),                                    // an OpenAI key
}

// secrets are the credentials this process was configured with.
var secrets struct {
	sync.RWMutex
	list []string
}

// RegisterSecret makes Redact remove s wherever it appears: a server may
// echo what it was sent. Providers register their secret keys when they
// are built. Values under 4 bytes are ignored (they would redact words).
func RegisterSecret(s string) {
	if len(s) < 4 {
		return
	}
	secrets.Lock()
	defer secrets.Unlock()
	if !slices.Contains(secrets.list, s) {
		secrets.list = append(secrets.list, s)
	}
}

// Redact replaces anything shaped like a credential, and every registered
// secret, with "[redacted]".
func Redact(s string) string {
	for _, re := range secretPatterns {
		s = re.ReplaceAllString(s, "[redacted]")
	}
	secrets.RLock()
	defer secrets.RUnlock()
	for _, secret := range secrets.list {
		s = strings.ReplaceAll(s, secret, "[redacted]")
	}
	return s
}
