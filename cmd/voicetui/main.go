// Command voicetui is a terminal voice-agent client. This release carries
// the audio foundation: device listing and a microphone/speaker check.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/voicetui/voicetui/audio"
)

// Exit statuses.
const (
	exitOK     = 0
	exitError  = 1
	exitDevice = 2 // a device is missing or won't open; also bad usage
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode prints err as one line and maps it to the exit status.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, context.Canceled) {
		return exitOK
	}
	fmt.Fprintln(stderr, "voicetui:", err)
	var de *audio.DeviceError
	var ue usageError
	if errors.As(err, &de) || errors.As(err, &ue) ||
		errors.Is(err, audio.ErrNoInputDevice) || errors.Is(err, audio.ErrNoOutputDevice) {
		return exitDevice
	}
	return exitError
}
