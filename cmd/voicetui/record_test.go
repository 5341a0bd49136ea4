package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
)

// goneSpeaker is a speaker that has failed.
type goneSpeaker struct{ audio.Sink }

var errGone = errors.New("the headset was pulled out")

func (goneSpeaker) Err() error { return errGone }

// With --record the speaker is wrapped to keep a recording: the watch on
// an idle speaker must still see it fail.
func TestRecordingKeepsTheSpeakerWatched(t *testing.T) {
	clock, err := audio.NewClockSink(audio.Pipeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer clock.Close()
	rec, err := audio.NewClockSink(audio.Pipeline, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	tee := &teeSink{Sink: goneSpeaker{clock}, rec: rec, failed: func(error) {}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan error, 1)
	go conversation.WatchSpeaker(ctx, tee, func(err error) { got <- err })
	select {
	case err := <-got:
		if !errors.Is(err, errGone) {
			t.Fatalf("watch heard %v", err)
		}
	case <-ctx.Done():
		t.Fatal("the watch never saw the recorded speaker fail")
	}
}
