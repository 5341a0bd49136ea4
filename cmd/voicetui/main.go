// Command voicetui is a terminal voice-agent client. This release carries
// the audio foundation (device listing, a microphone/speaker check) and the
// inference clients (ask: one question to the configured LLM).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Exit statuses.
const (
	exitOK     = 0
	exitError  = 1
	exitDevice = 2 // a device is missing or won't open; also bad usage or configuration
	exitQuota  = 3 // a terminal provider error: credits used up, bad credentials
)

// exitForced is the status of an exit forced by a second interrupt
// (128 + SIGINT, as a shell reports it).
const exitForced = 130

// gcPercent is the collector's pace (GOGC) unless the environment sets
// one: the heap may grow to 1.5 times what is live instead of 2. A spoken
// conversation's peak resident memory went from 95 to 92 MB
// (BenchmarkPeakRSS); the cost is a collection about every second while
// audio streams, of a millisecond or two.
const gcPercent = 50

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for range sigs {
			if quitAsked.Swap(true) {
				fmt.Fprintln(os.Stderr, "voicetui: interrupted again: exiting now")
				os.Exit(exitForced)
			}
			cancel()
		}
	}()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	cancel()
	os.Exit(exitCode(err, os.Stderr))
}

// quitAsked is set by the user's first request to stop: a signal, or q or
// Ctrl+C in the interface (a key there, not a signal). That one closes
// gracefully: a fallback clip that is playing plays to its end. The next
// signal exits at once.
var quitAsked atomic.Bool

// exitCode prints err as one line and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return exitOK
	}
	fmt.Fprintln(stderr, "voicetui:", err)
	if q, ok := provider.AsQuota(err); ok && q.Hint != "" {
		fmt.Fprintln(stderr, "voicetui: hint:", q.Hint)
	}
	if provider.Terminal(err) {
		return exitQuota
	}
	var de *audio.DeviceError
	var ue usageError
	var ce configError
	if errors.As(err, &de) || errors.As(err, &ue) || errors.As(err, &ce) ||
		errors.Is(err, audio.ErrNoInputDevice) || errors.Is(err, audio.ErrNoOutputDevice) {
		return exitDevice
	}
	return exitError
}
