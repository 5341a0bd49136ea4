package provider

import (
	"errors"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/voicetui/voicetui/pipeline/safetext"
)

// Credentials must never reach a log, an event or the screen, and a server
// may echo what it was sent. Two layers keep them out of what errors say:
// every error this package builds has token-shaped strings removed
// (redactTokens), and each client hides its own configured secrets in the
// errors it returns (a Redactor in its configuration). Conversation text
// (transcripts, replies) is never redacted: it is the user's and the
// agent's words.

var tokenPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/-]{16,}=*`),                            // an Authorization value
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*`),            // a JWT
	regexp.MustCompile(`\bsk-[A-Za-z0-9_-]{8,}`),                                             // an OpenAI key
	regexp.MustCompile(`(?i)([?&](?:api[_-]?key|key|token|access_token|secret)=)[^&#\s"']+`), // query-string credentials
}

const redacted = "[redacted]"

// redactTokens replaces token-shaped strings with "[redacted]".
func redactTokens(s string) string {
	for i, re := range tokenPatterns {
		if i == len(tokenPatterns)-1 {
			s = re.ReplaceAllString(s, "${1}"+redacted)
			continue
		}
		s = re.ReplaceAllString(s, redacted)
	}
	return s
}

// clean makes untrusted text from a server fit for an error: inert on a
// terminal, cut to limit runes, with token-shaped strings removed (before
// the cut, so that half a token is never shown, and after it).
func clean(s string, limit int) string {
	return redactTokens(safetext.Sanitize(redactTokens(s), limit))
}

// SafeText is untrusted text that is not an error's (another program's
// log lines) made fit to show: inert on a terminal, cut to limit runes,
// token-shaped strings removed.
func SafeText(s string, limit int) string { return clean(s, limit) }

// SafeURL is raw fit to show: a password written into it and credentials
// in its query string (?key=, token=, api_key=...) hidden, control
// characters removed.
func SafeURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		raw = u.Redacted()
	}
	return clean(raw, 300)
}

// MinSecretLen is the shortest configured secret a Redactor hides: a
// shorter one (the embedded gateway's local default "secret") would
// blank out ordinary words.
const MinSecretLen = 12

// Redactor hides a client's configured secrets in the errors it returns.
// The zero value hides nothing.
type Redactor struct {
	secrets []string
}

// NewRedactor hides each secret of at least MinSecretLen bytes.
func NewRedactor(secrets ...string) Redactor {
	var r Redactor
	for _, s := range secrets {
		if len(s) >= MinSecretLen {
			r.secrets = append(r.secrets, s)
		}
	}
	return r
}

// String replaces every secret in s with "[redacted]".
func (r Redactor) String(s string) string {
	for _, secret := range r.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// Error returns err with every secret removed from what it says and
// carries (a hint, a body, a message), keeping its type and
// classification.
func (r Redactor) Error(err error) error {
	if err == nil || len(r.secrets) == 0 {
		return err
	}
	switch e := err.(type) {
	case *QuotaError:
		c := *e
		c.Status = r.Error(e.Status).(*StatusError)
		c.QuotaType, c.Category, c.Hint = r.String(c.QuotaType), r.String(c.Category), r.String(c.Hint)
		c.RemainingLimit, c.CurrentUsage = r.String(c.RemainingLimit), r.String(c.CurrentUsage)
		return &c
	case *StatusError:
		c := *e
		c.Message, c.RequestID = r.String(c.Message), r.String(c.RequestID)
		c.Body = []byte(r.String(string(c.Body)))
		return &c
	case *ServerError:
		c := *e
		c.Message, c.Code = r.String(c.Message), r.String(c.Code)
		return &c
	case *ProtocolError:
		c := *e
		c.Detail = r.String(c.Detail)
		return &c
	case *ConnectionError:
		c := *e
		c.Err = &redactedError{err: e.Err, text: r.String(e.Err.Error())}
		return &c
	case *TimeoutError:
		return err
	}
	// Another error, perhaps wrapping one of ours: say it without the
	// secrets, and keep what it wraps findable (scrubbed, if ours).
	text := r.String(err.Error())
	var c Classified
	if errors.As(err, &c) && error(c) != err {
		return &redactedError{err: r.Error(c), text: text}
	}
	if text == err.Error() {
		return err
	}
	return &redactedError{err: errors.Unwrap(err), text: text}
}

// redactedError says text and wraps err.
type redactedError struct {
	err  error
	text string
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// OnRetry wraps a retry hook so that the errors it hears are redacted too.
func (r Redactor) OnRetry(hook func(int, error, time.Duration)) func(int, error, time.Duration) {
	if hook == nil || len(r.secrets) == 0 {
		return hook
	}
	return func(attempt int, err error, wait time.Duration) { hook(attempt, r.Error(err), wait) }
}

// Scrub redacts *err in place: defer r.Scrub(&err) at a client's boundary.
func (r Redactor) Scrub(err *error) {
	if *err != nil && len(r.secrets) > 0 {
		*err = r.Error(*err)
	}
}
