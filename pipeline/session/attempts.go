package session

import (
	"errors"
	"sync"
	"time"

	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Attempts numbers the attempts of each request. Providers retry inside a
// request and report each failed attempt that will be retried through
// their Retry.OnRetry hook: wire that to OnRetry. Each becomes an error
// event (with retry_in_ms), and the request's final failure then carries
// its attempt number. It is built before the providers and handed to the
// session, so neither waits for the other to exist.
type Attempts struct {
	events    *conversation.Emitter
	mu        sync.Mutex
	n         map[provider.Stage]int            // retries reported in the current request, per stage
	listeners map[*retryListener]provider.Stage // an interrupted turn may still listen beside the next
}

type retryListener struct{ fn func(wait time.Duration) }

// NewAttempts reports retries to events.
func NewAttempts(events *conversation.Emitter) *Attempts {
	return &Attempts{events: events, n: map[provider.Stage]int{}, listeners: map[*retryListener]provider.Stage{}}
}

// OnRetry is a provider.Retry.OnRetry hook.
func (a *Attempts) OnRetry(attempt int, err error, wait time.Duration) {
	var fns []func(time.Duration)
	if c := provider.Classified(nil); errors.As(err, &c) {
		a.mu.Lock()
		a.n[c.ErrStage()] = attempt
		for l, stage := range a.listeners {
			if stage == c.ErrStage() {
				fns = append(fns, l.fn)
			}
		}
		a.mu.Unlock()
	}
	e := conversation.ErrorInfo(err, attempt)
	e.RetryInMs = max(wait.Milliseconds(), 1)
	a.events.Emit(*e)
	for _, fn := range fns {
		fn(wait)
	}
}

// listen makes fn hear the retries of stage (the wait before the next
// attempt) until the returned function is called: a watchdog on an
// answer owes a new attempt its whole time.
func (a *Attempts) listen(stage provider.Stage, fn func(wait time.Duration)) (stop func()) {
	l := &retryListener{fn: fn}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.listeners[l] = stage
	return func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		delete(a.listeners, l)
	}
}

// succeeded forgets a stage's retries once a request succeeded.
func (a *Attempts) succeeded(stage provider.Stage) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.n, stage)
}

// final is the attempt number of a request's last failure, and forgets
// the stage's retries.
func (a *Attempts) final(err error) int {
	var c provider.Classified
	if !errors.As(err, &c) {
		return 1
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.n[c.ErrStage()] + 1
	delete(a.n, c.ErrStage())
	return n
}
