package conversation

import (
	"context"
	"io"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// micFrame is one microphone read: 20 ms at the pipeline rate.
const micFrame = audio.PipelineRate / 50

// MicPiece is 20 ms of microphone audio (PCM), or the end of the input
// (End; Err says whether it failed).
type MicPiece struct {
	PCM []int16
	End bool
	Err error
}

// ReadMic reads the microphone in 20 ms pieces for a remote agent's loop
// (room and console mode); after its
// input ends it goes on with silence at the same pace, because the agent's
// voice detector needs the silence after the last words to end the turn,
// and its stream would otherwise go quiet.
//
// When ready is not nil the source is held until it is closed (the agent
// listens), with silence sent meanwhile: a recording (--input) said into a
// room before the agent listened was not heard (on two cores the agent
// took 2 s), where a person would have waited.
func ReadMic(ctx context.Context, mic audio.Source, ready <-chan struct{}, out chan<- MicPiece) {
	if ready != nil {
		t := time.NewTicker(20 * time.Millisecond)
	hold:
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-ready:
				break hold
			case <-t.C:
				send(ctx, out, MicPiece{PCM: make([]int16, micFrame)})
			}
		}
		t.Stop()
	}
	buf := make([]int16, micFrame)
	for {
		n, err := mic.Read(ctx, buf)
		if n > 0 {
			send(ctx, out, MicPiece{PCM: append([]int16(nil), buf[:n]...)})
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return
		}
		if err != io.EOF {
			send(ctx, out, MicPiece{End: true, Err: err})
			return
		}
		send(ctx, out, MicPiece{End: true})
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				send(ctx, out, MicPiece{PCM: make([]int16, micFrame)})
			}
		}
	}
}

func send[T any](ctx context.Context, ch chan<- T, m T) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}
