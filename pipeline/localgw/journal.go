package localgw

import (
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/voicetui/voicetui/pipeline/safetext"
)

// The person demoing quota behaviour needs to see what their agent was
// told: every answer the gateway gives is logged and kept (the last
// journalSize) for /control/status, with why it was given and which
// client asked. A real client cannot always show it (agents-js drops the
// body of a refused WebSocket handshake).

// Answer is what the gateway answered one request, and why.
type Answer struct {
	At     time.Time         `json:"at"`
	Stage  string            `json:"stage"`  // llm, stt, tts, models, eot, bargein
	Status int               `json:"status"` // HTTP status; 101 for a socket accepted
	Why    string            `json:"why"`    // "served", "quota rule llm:credits", "fault stt:5xx", "unauthorized: ...", ...
	Client map[string]string `json:"client,omitempty"`
}

const journalSize = 100

type journal struct {
	log     *slog.Logger
	mu      sync.Mutex
	answers []Answer // the last journalSize, oldest first
}

// clientHeaders are the request headers that say who asked: real LiveKit
// clients send the room, job and agent they serve.
var clientHeaders = []string{"User-Agent", "X-LiveKit-Room-Id", "X-LiveKit-Job-Id", "X-LiveKit-Agent-Id"}

// clientOf is who asked r, from its clientHeaders (nil: nobody said).
func clientOf(r *http.Request) map[string]string {
	var c map[string]string
	for _, h := range clientHeaders {
		if v := r.Header.Get(h); v != "" {
			if c == nil {
				c = map[string]string{}
			}
			c[strings.ToLower(strings.TrimPrefix(h, "X-LiveKit-"))] = safetext.Sanitize(v, 120)
		}
	}
	return c
}

// note records and logs an answer to r.
func (j *journal) note(r *http.Request, stage string, status int, why string) {
	a := Answer{At: time.Now(), Stage: stage, Status: status, Why: why}
	attrs := []any{"stage", stage, "status", status, "why", why}
	if r != nil {
		a.Client = clientOf(r)
		for _, h := range clientHeaders {
			k := strings.ToLower(strings.TrimPrefix(h, "X-LiveKit-"))
			if v, ok := a.Client[k]; ok {
				attrs = append(attrs, k, v)
			}
		}
	}
	j.mu.Lock()
	j.answers = append(j.answers, a)
	if len(j.answers) > journalSize {
		j.answers = append(j.answers[:0:0], j.answers[len(j.answers)-journalSize:]...)
	}
	j.mu.Unlock()
	j.log.Info("answered", attrs...)
}

// recent returns the kept answers, oldest first.
func (j *journal) recent() []Answer {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Answer(nil), j.answers...)
}

// served says a request was served, with the faults that apply to it.
func served(faults []FaultRule) string {
	if len(faults) == 0 {
		return "served"
	}
	names := make([]string, len(faults))
	for i, f := range faults {
		names[i] = f.String()
	}
	return "served with fault " + strings.Join(names, ", ")
}
