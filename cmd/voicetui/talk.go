package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/session"
	"github.com/voicetui/voicetui/ui"
)

// talk holds a spoken conversation with the local pipeline: devices (or
// --input/--output files), the backend, and the session. Its events go to
// the interface, JSON lines (--headless) or plain lines (events.go).
func talk(ctx context.Context, c config, stdout, stderr io.Writer) error {
	var open closers
	defer open.closeAll()

	log, err := gatewayLog(&c, &open)
	if err != nil {
		return err
	}
	out, err := openEvents(c, stdout, &open)
	if err != nil {
		return err
	}
	out.log = log
	aio, err := openAudio(c, &open, out.recordFailed, out.echoFailed)
	if err != nil {
		return err
	}
	// Retries become events as they happen; the session numbers each
	// request's attempts from the same reports.
	attempts := session.NewAttempts(out.events)
	opts := c.provider
	opts.Retry.OnRetry = attempts.OnRetry
	b, err := backend.Open(opts, os.Getenv)
	if err != nil {
		return configError{err}
	}
	open.add(b.Close)
	if !c.headless && !c.tui {
		fmt.Fprintf(stderr, "voicetui: talking to %s; echo cancellation %s; Ctrl+C ends\n", b.Description, aio.echo)
	}

	so := c.session
	so.LLM, so.STT, so.TTS = b.LLM, b.STT, b.TTS
	so.Mic, so.Speaker, so.Events, so.Attempts = aio.mic, aio.spk, out.events, attempts
	so.ReopenMic = aio.reopenMic
	if !c.halfDuplex {
		so.EchoCancelled = aio.echoWorking // nil without a canceller: the threshold is raised
	}
	var lv *levels
	if c.tui {
		lv = newLevels()
		so.InputLevel, so.OutputLevel = lv.input, lv.output
	}
	sess, err := session.New(so)
	if err != nil {
		return err
	}
	if !c.tui {
		return sess.Run(ctx)
	}
	ctl := ui.Controller{}
	if b.Gateway != nil {
		gatewayControl(&ctl, b.Gateway)
	}
	return runInterface(ctx, sess, ui.Info{Backend: kindName(b.Kind), Detail: b.Description, TextMode: aio.noMic != nil, Echo: aio.echo}, ctl, stdout, out, lv, c.record,
		aio.notes()...)
}

// gatewayLog sends the embedded gateway's log to --log-file, and returns
// that log (nil without the flag).
func gatewayLog(c *config, open *closers) (slog.Handler, error) {
	h, err := logFile(*c, open)
	if h != nil {
		c.provider.Local.Log = slog.New(h)
	}
	return h, err
}

// logFile is --log-file as a log handler, or nil without it: nothing else
// may write to the terminal under the interface.
func logFile(c config, open *closers) (slog.Handler, error) {
	if c.logFile == "" {
		return nil, nil
	}
	f, err := createPrivate(c.logFile, os.O_APPEND)
	if err != nil {
		return nil, configError{fmt.Errorf("--log-file: %w", err)}
	}
	open.add(f.Close)
	return slog.NewTextHandler(f, nil), nil
}

func kindName(k backend.Kind) string {
	switch k {
	case backend.Embedded:
		return "embedded gateway"
	case backend.LiveKit:
		return "LiveKit Inference"
	case backend.OpenAI:
		return "OpenAI-compatible"
	}
	return string(k)
}

// createPrivate opens path for writing (flag: os.O_APPEND or os.O_TRUNC),
// readable by its owner only: logs and events hold what was said. An
// existing file loses its group and other permissions; a device such as
// /dev/null is left alone.
func createPrivate(path string, flag int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|flag, 0o600)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(st.Mode().Perm() &^ 0o077); err != nil {
			f.Close()
			return nil, fmt.Errorf("make %s private (chmod 600): %w", path, err)
		}
	}
	return f, nil
}
