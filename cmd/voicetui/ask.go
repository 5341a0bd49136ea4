package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/pipeline/session"
)

// configError is a backend that cannot be built from the flags and
// environment; like a usage error, the user must change something.
type configError struct{ err error }

func (e configError) Error() string { return e.err.Error() }
func (e configError) Unwrap() error { return e.err }

// ask sends one question and prints the reply as it streams in. Retries
// are announced on stderr so that a rate limit is visible, not a stall.
func ask(ctx context.Context, c config, stdout, stderr io.Writer) error {
	opts := c.provider
	opts.Retry.OnRetry = func(attempt int, err error, wait time.Duration) {
		fmt.Fprintf(stderr, "voicetui: %v; retry %d of %d in %s\n", err, attempt, opts.Retry.Retries(), wait.Round(time.Millisecond))
	}
	b, err := backend.Open(opts, os.Getenv)
	if err != nil {
		return configError{err}
	}
	defer b.Close()
	fmt.Fprintf(stderr, "voicetui: asking %s\n", b.Description)
	s, err := b.LLM.Chat(ctx, []provider.Message{{Role: "system", Content: session.DefaultSystemPrompt}, {Role: "user", Content: c.prompt}})
	if err != nil {
		return err
	}
	defer s.Close()
	wrote := false
	for s.Next() {
		fmt.Fprint(stdout, safetext.Inert(s.Current()))
		wrote = true
	}
	if wrote {
		fmt.Fprintln(stdout)
	}
	return s.Err()
}
