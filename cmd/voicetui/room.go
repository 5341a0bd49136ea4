package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/voicetui/voicetui/pipeline/room"
	"github.com/voicetui/voicetui/ui"
)

// talkInRoom holds a conversation with a LiveKit agent in a room: the same
// devices (or --input/--output files), events and interface as talk, with
// a room.Conversation instead of the local pipeline.
func talkInRoom(ctx context.Context, c config, stdout, stderr io.Writer) error {
	ro := c.room
	if ro.URL == "" {
		ro.URL = strings.TrimSpace(os.Getenv("LIVEKIT_URL"))
	}
	if ro.Token == "" {
		ro.APIKey, ro.APISecret = strings.TrimSpace(os.Getenv("LIVEKIT_API_KEY")), strings.TrimSpace(os.Getenv("LIVEKIT_API_SECRET"))
	}
	if ro.Room == "" {
		ro.Room = "voicetui-" + strings.ToLower(rand.Text()[:6])
	}
	ro.Fallback = c.session.Fallback
	ro.MaxUnrecoverable = c.session.MaxUnrecoverable
	if err := ro.Validate(); err != nil { // before any device opens
		return usageError{err.Error()}
	}

	var open closers
	defer open.closeAll()
	sdkLog, err := logFile(c, &open)
	if err != nil {
		return err
	}
	room.SDKLog(sdkLog)
	out, err := openEvents(c, stdout, &open)
	if err != nil {
		return err
	}
	out.log = sdkLog
	aio, err := openAudio(c, &open, out.recordFailed, out.echoFailed)
	if err != nil {
		return err
	}
	ro.Mic, ro.Speaker, ro.Events = aio.mic, aio.spk, out.events
	ro.HoldInput = c.input != "" // a recording waits for the agent, as a person does
	var lv *levels
	if c.tui {
		lv = newLevels()
		ro.InputLevel, ro.OutputLevel = lv.input, lv.output
	}
	conv, err := room.New(ro)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("room %s on %s", ro.Room, ro.URL)
	if !c.headless && !c.tui {
		fmt.Fprintf(stderr, "voicetui: joining %s; echo cancellation %s; Ctrl+C ends\n", where, aio.echo)
	}
	if !c.tui {
		return conv.Run(ctx)
	}
	return runInterface(ctx, conv, ui.Info{Backend: "LiveKit room", Detail: where, TextMode: aio.noMic != nil, Echo: aio.echo}, ui.Controller{}, stdout, out, lv, c.record,
		aio.notes()...)
}
