package provider

import (
	"context"
	"time"
)

// Retry is how a provider retries one request. The zero value means the
// defaults below, which follow the reference SDK.
type Retry struct {
	Max           int           // retries after the first attempt (default 3; negative: none)
	First         time.Duration // wait before the first retry (default 100 ms)
	Interval      time.Duration // wait before later retries (default 2 s)
	MaxRetryAfter time.Duration // cap on a server's Retry-After (default 5 s)
	Timeout       time.Duration // per attempt, and idle time within a stream (default 10 s)
	// OnRetry, when set, hears about every failed attempt that will be
	// retried: attempt is 1 for the first, wait is the pause before the next.
	OnRetry func(attempt int, err error, wait time.Duration)
}

const (
	DefaultRetries       = 3
	DefaultFirstRetry    = 100 * time.Millisecond
	DefaultRetryInterval = 2 * time.Second
	DefaultMaxRetryAfter = 5 * time.Second
	DefaultTimeout       = 10 * time.Second
)

// Retries is how many retries follow a failed first attempt.
func (r Retry) Retries() int {
	switch {
	case r.Max < 0:
		return 0
	case r.Max == 0:
		return DefaultRetries
	}
	return r.Max
}

// AttemptTimeout is the per-attempt (and stream idle) timeout.
func (r Retry) AttemptTimeout() time.Duration {
	if r.Timeout > 0 {
		return r.Timeout
	}
	return DefaultTimeout
}

// Wait returns the pause before retry number n (1-based) after err:
// the server's Retry-After when it gave one (capped), else First for the
// first retry and Interval after that.
func (r Retry) Wait(n int, err error) time.Duration {
	var ra time.Duration
	if se, ok := AsStatus(err); ok {
		ra = se.RetryAfter
	}
	if ra > 0 {
		limit := r.MaxRetryAfter
		if limit <= 0 {
			limit = DefaultMaxRetryAfter
		}
		return min(ra, limit)
	}
	if n == 1 {
		if r.First > 0 {
			return r.First
		}
		return DefaultFirstRetry
	}
	if r.Interval > 0 {
		return r.Interval
	}
	return DefaultRetryInterval
}

// Do calls attempt until it succeeds, returns an error that is not
// retryable, or the retries run out; the last error is returned. Attempts
// manage their own timeout (AttemptTimeout) because what they open may
// outlive Do. A cancelled ctx ends the loop with ctx's error.
func (r Retry) Do(ctx context.Context, attempt func(ctx context.Context) error) error {
	for n := 1; ; n++ {
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if !Retryable(err) || n > r.Retries() {
			return err
		}
		wait := r.Wait(n, err)
		if r.OnRetry != nil {
			r.OnRetry(n, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}
