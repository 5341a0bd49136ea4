package room

import (
	"context"
	"sync/atomic"
	"time"

	msdk "github.com/livekit/media-sdk"
	"github.com/livekit/protocol/logger"
	"github.com/livekit/server-sdk-go/v2/pkg/media"
	"github.com/pion/webrtc/v4"

	"github.com/voicetui/voicetui/audio"
)

// trackRate is the rate of the PCM the SDK's tracks take and give (48 kHz,
// Opus's own).
const trackRate = 48000

// publisher sends the microphone to the room: resampled to 48 kHz and
// queued on the SDK's PCM track, which encodes Opus and paces 20 ms frames
// itself.
type publisher struct {
	track *media.PCMLocalTrack
	rs    *audio.Resampler
	buf   []int16
}

func newPublisher() (*publisher, error) {
	track, err := media.NewPCMLocalTrack(trackRate, 1, logger.GetLogger())
	if err != nil {
		return nil, err
	}
	rs, err := audio.NewResampler(audio.PipelineRate, trackRate)
	if err != nil {
		track.Close()
		return nil, err
	}
	return &publisher{track: track, rs: rs}, nil
}

func (p *publisher) write(pcm []int16) error {
	p.buf = p.rs.Process(p.buf[:0], pcm)
	return p.track.WriteSample(msdk.PCM16Sample(p.buf))
}

func (p *publisher) close() { p.track.Close() }

// holdMax bounds how long the agent's audio waits for a local sound (the
// earcon is 0.35 s; a clip while the agent speaks is not worth more).
const holdMax = 500 * time.Millisecond

// agentAudio is the agent's track decoded: each piece goes, never
// blocking the SDK's goroutine, to the player; the loop hears that sound
// came (and when) through heard.
type agentAudio struct {
	pieces chan []int16
	heard  func(time.Time) // the piece was not silence
	drops  atomic.Int64
}

// WriteSample implements media.PCMRemoteTrackWriter (48 kHz mono).
func (a *agentAudio) WriteSample(s msdk.PCM16Sample) error {
	pcm := append([]int16(nil), s...)
	if audio.RMS(pcm) > audibleDBFS {
		a.heard(time.Now())
	}
	select {
	case a.pieces <- pcm:
	default:
		a.drops.Add(1) // the speaker is 2 s behind: drop rather than stall the track
	}
	return nil
}

func (a *agentAudio) Close() error { return nil }

// audibleDBFS is the level above which the agent's audio is speech, not
// the silence its track may carry between replies.
const audibleDBFS = -50

// subscribe decodes the agent's audio track into a.
func subscribe(track *webrtc.TrackRemote, a *agentAudio) (*media.PCMRemoteTrack, error) {
	return media.NewPCMRemoteTrack(track, a, media.WithTargetSampleRate(trackRate), media.WithTargetChannels(1))
}

// play sends the agent's audio to the speaker, resampled, until ctx ends
// or the speaker fails (that error is returned). While hold says a local
// sound plays (the earcon: an answer that comes right after a retried
// error), the agent waits for it, at most holdMax: the speaker has no
// mixer, and two writers would interleave.
func play(ctx context.Context, spk audio.Sink, pieces <-chan []int16, level func(float64), hold func() bool) error {
	var rs *audio.Resampler
	if rate := spk.Format().SampleRate; rate != trackRate {
		rs, _ = audio.NewResampler(trackRate, rate)
	}
	var buf []int16
	var heldSince time.Time // a local sound has held the agent since; zero: none
	for {
		var pcm []int16
		select {
		case <-ctx.Done():
			return nil
		case pcm = <-pieces:
		}
		if rs != nil {
			buf = rs.Process(buf[:0], pcm)
			pcm = buf
		}
		if !hold() {
			heldSince = time.Time{}
		} else if heldSince.IsZero() {
			heldSince = time.Now()
		}
		for !heldSince.IsZero() && hold() && time.Since(heldSince) < holdMax {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(10 * time.Millisecond):
			}
		}
		if level != nil {
			level(audio.RMS(pcm))
		}
		if _, err := spk.Write(ctx, pcm); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
