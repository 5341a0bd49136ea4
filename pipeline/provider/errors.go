// Package provider is the contract between the voice session and the
// inference providers: the interfaces an LLM, an STT and a TTS client
// implement (provider.go), the error model every failure is typed by
// (errors.go), the retry policy (retry.go) and the redaction of
// credentials in what errors say (redact.go).
//
// Every provider failure becomes a typed, classified error, so that higher
// loops decide from types, never from strings.
//
// Two independent ideas classify an error:
//   - Retryable: trying the same request again may succeed (a rate limit,
//     a 5xx, a dropped connection). Providers retry these inside a request.
//   - Terminal: nothing will succeed until a person acts (credits used up,
//     a revoked key). Every higher loop gives up at once.
package provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Stage is the part of the pipeline an error came from.
type Stage int

const (
	StageUnknown Stage = iota
	StageSTT
	StageLLM
	StageTTS
)

func (s Stage) String() string {
	switch s {
	case StageSTT:
		return "stt"
	case StageLLM:
		return "llm"
	case StageTTS:
		return "tts"
	}
	return "unknown"
}

// Classified is implemented by every error of this model.
type Classified interface {
	error
	ErrStage() Stage
	IsRetryable() bool
	IsTerminal() bool
}

// Retryable reports whether err (or an error it wraps) may succeed when
// the same request is tried again.
func Retryable(err error) bool {
	var c Classified
	return errors.As(err, &c) && c.IsRetryable()
}

// Terminal reports whether err (or an error it wraps) means that nothing
// will succeed until a person acts.
func Terminal(err error) bool {
	var c Classified
	return errors.As(err, &c) && c.IsTerminal()
}

// MaxBody caps how much of an error response is kept and parsed.
const MaxBody = 64 << 10

// Usage holds the gateway's X-LiveKit-Inference-* headers. Values are
// opaque strings; "" means the header was absent (unknown, not zero).
type Usage struct {
	RPMLimit, RPMUsed         string
	TPMLimit, TPMUsed         string
	CreditsLimit, CreditsUsed string
}

func usageFrom(h http.Header) Usage {
	get := func(k string) string { return clean(h.Get("X-LiveKit-Inference-"+k), 64) }
	return Usage{
		RPMLimit: get("RPM-Limit"), RPMUsed: get("RPM-Used"),
		TPMLimit: get("TPM-Limit"), TPMUsed: get("TPM-Used"),
		CreditsLimit: get("Credits-Limit"), CreditsUsed: get("Credits-Used"),
	}
}

// StatusError is an HTTP error response (also a refused WebSocket
// handshake).
type StatusError struct {
	Stage      Stage
	StatusCode int
	RequestID  string
	Message    string        // sanitized, short; from the body when it has one
	Body       []byte        // raw body, at most MaxBody bytes
	Usage      Usage         // quota usage headers
	RetryAfter time.Duration // from Retry-After; 0 when absent
	Retryable  bool
	Terminal   bool
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("%s: HTTP %d", e.Stage, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		msg += " " + t
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request " + e.RequestID + ")"
	}
	return msg
}

func (e *StatusError) ErrStage() Stage   { return e.Stage }
func (e *StatusError) IsRetryable() bool { return e.Retryable }
func (e *StatusError) IsTerminal() bool  { return e.Terminal }

// QuotaError is a quota or rate limit reported by the provider: the
// gateway's inference_quota_exceeded body, or OpenAI's quota codes. It
// wraps the StatusError it came with. Absent or non-string fields are "".
type QuotaError struct {
	Status         *StatusError
	QuotaType      string // llm, stt, tts, bargein, eot
	Category       string // e.g. MaxGatewayCredits, MaxConcurrentGatewayLLMRpm
	Hint           string // what the user can do, sanitized
	RemainingLimit string // opaque ("0" when exhausted)
	CurrentUsage   string
}

func (e *QuotaError) Error() string {
	what := "quota exceeded"
	if !e.Status.Terminal {
		what = "rate limited"
	}
	msg := fmt.Sprintf("%s: %s", e.Status.Stage, what)
	if e.Category != "" {
		msg += " (" + e.Category + ")"
	}
	if e.Status.Message != "" {
		msg += ": " + e.Status.Message
	}
	return msg
}

func (e *QuotaError) Unwrap() error     { return e.Status }
func (e *QuotaError) ErrStage() Stage   { return e.Status.Stage }
func (e *QuotaError) IsRetryable() bool { return e.Status.Retryable }
func (e *QuotaError) IsTerminal() bool  { return e.Status.Terminal }

// ConnectionError is a failure to reach the provider or a connection lost
// mid-stream. Retryable.
type ConnectionError struct {
	Stage Stage
	Op    string // "dial", "read", ...
	Err   error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Stage, e.Op, redactTokens(e.Err.Error()))
}
func (e *ConnectionError) Unwrap() error     { return e.Err }
func (e *ConnectionError) ErrStage() Stage   { return e.Stage }
func (e *ConnectionError) IsRetryable() bool { return true }
func (e *ConnectionError) IsTerminal() bool  { return false }

// TimeoutError is an attempt that took longer than its deadline. Retryable.
type TimeoutError struct {
	Stage Stage
	After time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s: no answer within %s", e.Stage, e.After)
}
func (e *TimeoutError) ErrStage() Stage   { return e.Stage }
func (e *TimeoutError) IsRetryable() bool { return true }
func (e *TimeoutError) IsTerminal() bool  { return false }

// ServerError is an error the provider reported inside an open stream: an
// SSE "error" event or a WebSocket "error" message. Retryable, as in the
// reference SDK; a provider still never retries once content was delivered.
type ServerError struct {
	Stage   Stage
	Message string // sanitized
	Code    string // sanitized; "" when absent
}

func (e *ServerError) Error() string {
	msg := fmt.Sprintf("%s: provider error", e.Stage)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}
func (e *ServerError) ErrStage() Stage   { return e.Stage }
func (e *ServerError) IsRetryable() bool { return true }
func (e *ServerError) IsTerminal() bool  { return false }

// ProtocolError is a message that breaks the protocol: malformed JSON, an
// SSE payload of the wrong shape, an odd-length audio frame. Retryable like
// a corrupted connection (only while nothing was delivered).
type ProtocolError struct {
	Stage  Stage
	Detail string // what was wrong, sanitized
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("%s: malformed message from the provider: %s", e.Stage, e.Detail)
}
func (e *ProtocolError) ErrStage() Stage   { return e.Stage }
func (e *ProtocolError) IsRetryable() bool { return true }
func (e *ProtocolError) IsTerminal() bool  { return false }

// Malformed builds a ProtocolError quoting a short, sanitized excerpt of
// the offending message.
func Malformed(stage Stage, what string, msg []byte) *ProtocolError {
	// clean redacts before it cuts to 80; the first cut only bounds
	// the work and lies far beyond what is shown.
	return &ProtocolError{Stage: stage, Detail: what + ": " + strconv.Quote(clean(string(msg[:min(len(msg), 4096)]), 80))}
}

// FromStreamMessage types an error that arrived inside an open stream (an
// SSE error event, a WebSocket "error" message). A gateway quota body is a
// QuotaError as if it had come with HTTP 429; anything else is a
// ServerError with the message and code it carries.
func FromStreamMessage(stage Stage, body []byte) error {
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	f := parseBody(body)
	if f.typ == quotaType {
		return FromResponse(stage, http.StatusTooManyRequests, nil, body)
	}
	code := f.code
	var top map[string]json.RawMessage // by exact name, as parseBody reads
	if code == "" && json.Unmarshal(body, &top) == nil && len(top["code"]) > 0 {
		var s string
		var n json.Number
		if json.Unmarshal(top["code"], &s) == nil {
			code = clean(s, 64)
		} else if json.Unmarshal(top["code"], &n) == nil {
			code = n.String()
		}
	}
	return &ServerError{Stage: stage, Message: f.message, Code: code}
}

// AsStatus finds the StatusError in err's chain (a QuotaError holds one).
func AsStatus(err error) (*StatusError, bool) {
	var se *StatusError
	ok := errors.As(err, &se)
	return se, ok
}

// AsQuota finds the QuotaError in err's chain.
func AsQuota(err error) (*QuotaError, bool) {
	var q *QuotaError
	ok := errors.As(err, &q)
	return q, ok
}

// Quota categories that end only with the billing cycle or an upgrade.
// Every other category (MaxConcurrent…, unknown, absent) is a transient
// limit: fail open, retry with backoff.
var terminalCategories = map[string]bool{
	"MaxGatewayCredits":  true,
	"MaxBargeInRequests": true,
	"MaxEotRequests":     true,
}

// OpenAI's error codes: exhausted billing is terminal, a rate limit is not.
var openAITerminal = map[string]bool{"insufficient_quota": true, "billing_hard_limit_reached": true}

const quotaType = "inference_quota_exceeded"

// ReadResponse turns a non-2xx response into a typed error, reading at
// most MaxBody bytes of its body. It closes the body.
func ReadResponse(stage Stage, resp *http.Response) error {
	defer resp.Body.Close()
	// A body cut short by a read error is still worth classifying: the
	// status alone decides when nothing of it arrived.
	body, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	return FromResponse(stage, resp.StatusCode, resp.Header, body)
}

// FromResponse classifies an error response from its status, headers and
// (untrusted) body. It never panics, whatever the body holds.
func FromResponse(stage Stage, status int, h http.Header, body []byte) error {
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	se := &StatusError{
		Stage:      stage,
		StatusCode: status,
		RequestID:  clean(firstHeader(h, "X-Request-Id", "X-Request-ID", "Request-Id"), 128),
		Body:       body,
		Usage:      usageFrom(h),
		RetryAfter: retryAfter(h.Get("Retry-After"), time.Now()),
	}
	switch {
	case status == 401 || status == 403:
		se.Terminal = true // credentials will not fix themselves
	case status == 408 || status == 429 || status == 499:
		se.Retryable = true
	case status >= 500:
		se.Retryable = true
	}
	f := parseBody(body)
	se.Message = f.message
	if f.typ == quotaType {
		q := &QuotaError{Status: se, QuotaType: f.quotaType, Category: f.category, Hint: f.hint,
			RemainingLimit: f.remaining, CurrentUsage: f.currentUsage}
		if q.QuotaType == "" && stage != StageUnknown {
			// The gateway's STT/TTS connection refusals carry no
			// quota_type: the stage that was refused is the quota's.
			q.QuotaType = stage.String()
		}
		se.Terminal = terminalCategories[f.category]
		se.Retryable = !se.Terminal
		return q
	}
	if f.code != "" && (openAITerminal[f.code] || f.code == "rate_limit_exceeded") {
		q := &QuotaError{Status: se, QuotaType: stage.String(), Category: f.code}
		se.Terminal = openAITerminal[f.code]
		se.Retryable = !se.Terminal
		return q
	}
	return se
}

// fields are the parts of an error body we use, all optional.
type fields struct {
	typ, message, quotaType, category, hint, remaining, currentUsage, code string
}

// parseBody reads the gateway's flat quota body or OpenAI's
// {"error": {"message", "type", "code"}}. A field of the wrong JSON type is
// treated as absent.
func parseBody(body []byte) fields {
	var f fields
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		f.message = clean(string(body), 200) // plain text or HTML: keep a short excerpt
		return f
	}
	str := func(m map[string]json.RawMessage, k string, limit int) string {
		var s string
		if raw, ok := m[k]; ok && json.Unmarshal(raw, &s) == nil {
			return clean(s, limit)
		}
		return ""
	}
	f.typ = str(top, "type", 64)
	f.quotaType = str(top, "quota_type", 32)
	f.category = str(top, "category", 64)
	f.hint = str(top, "hint", 500)
	f.remaining = str(top, "remaining_limit", 64)
	f.currentUsage = str(top, "current_usage", 64)
	f.message = str(top, "error", 300)
	if f.message == "" {
		f.message = str(top, "message", 300)
	}
	var nested map[string]json.RawMessage
	if raw, ok := top["error"]; ok && json.Unmarshal(raw, &nested) == nil {
		f.message = str(nested, "message", 300)
		f.code = str(nested, "code", 64)
		if f.code == "" {
			f.code = str(nested, "type", 64)
		}
	}
	return f
}

func firstHeader(h http.Header, keys ...string) string {
	for _, k := range keys {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

// retryAfter parses Retry-After (seconds or an HTTP date); 0 if absent or
// unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 86400 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
