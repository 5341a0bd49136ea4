package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
	"github.com/voicetui/voicetui/pipeline/provider"
)

type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.all = append(e.all, ev); e.mu.Unlock() }

func (e *events) fallbacks() []Fallback {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Fallback
	for _, ev := range e.all {
		if f, ok := ev.Payload.(Fallback); ok {
			out = append(out, f)
		}
	}
	return out
}

// sink counts what reaches it and drains at once.
type sink struct {
	mu      sync.Mutex
	samples int
	failed  error
}

func (s *sink) Format() audio.Format { return audio.Format{SampleRate: 16000, Channels: 1} }
func (s *sink) Write(_ context.Context, p []int16) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return 0, s.failed
	}
	s.samples += len(p)
	return len(p), nil
}
func (s *sink) Flush()                      {}
func (s *sink) Drain(context.Context) error { return nil }
func (s *sink) Close() error                { return nil }

func credits() error {
	return provider.FromResponse(provider.StageTTS, http.StatusTooManyRequests, nil, []byte(pipelinetest.QuotaBody("tts", "MaxGatewayCredits")))
}

func TestEnded(t *testing.T) {
	if c := Ended(nil, 0); c.Reason != "user" || c.Error != nil {
		t.Fatalf("%+v", c)
	}
	if c := Ended(io.EOF, 0); c.Reason != "input_ended" {
		t.Fatalf("%+v", c)
	}
	c := Ended(credits(), 0)
	if c.Reason != "error" || c.Error == nil || c.Error.Attempt != 1 || !c.Error.Terminal || c.Error.Stage != "tts" || c.Error.Quota == nil {
		t.Fatalf("%+v", c)
	}
}

// An event carries only what the gateway sent: a quota body with no hint
// and no category gives an event without those fields.
func TestQuotaFieldsTheBodyLackedAreAbsent(t *testing.T) {
	err := provider.FromResponse(provider.StageLLM, http.StatusTooManyRequests, nil,
		[]byte(`{"type":"inference_quota_exceeded","quota_type":"llm","remaining_limit":"0"}`))
	b, jerr := json.Marshal(ErrorInfo(err, 1))
	if jerr != nil {
		t.Fatal(jerr)
	}
	var got struct{ Quota map[string]any }
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "llm", "remaining_limit": "0"}
	if !reflect.DeepEqual(got.Quota, want) {
		t.Fatalf("quota %v, want %v (from %s)", got.Quota, want, b)
	}
}

type described struct{}

func (described) Error() string { return "agent: gone" }
func (described) Describe() Error {
	return Error{Stage: "agent", Message: "gone \x1b[31mred", Hint: "check it", Terminal: true}
}

func TestErrorInfoOfADescribedError(t *testing.T) {
	e := ErrorInfo(errors.Join(errors.New("wrapped"), described{}), 2)
	if e.Stage != "agent" || e.Message != "gone red" || e.Hint != "check it" || !e.Terminal || e.Attempt != 2 {
		t.Fatalf("%+v", e)
	}
}

func TestFallbackPlayerPlaysTheClipEvenWhenTTSIsWhatFailed(t *testing.T) {
	var ev events
	spk := &sink{}
	spoke := false
	p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add), Options: fallback.Options{ErrorMessage: "Sorry."},
		Speak: func(context.Context, string) error { spoke = true; return nil }}
	p.Play(credits(), fallback.State{TTSFailed: true})
	f := ev.fallbacks()
	if spoke || len(f) != 1 || f[0].Clip != "quota" || !f[0].OK || spk.samples == 0 {
		t.Fatalf("spoke %v, fallback %+v, %d samples", spoke, f, spk.samples)
	}
	// Replay plays the same clip again.
	p.Replay()
	p.Wait()
	if f := ev.fallbacks(); len(f) != 2 || f[1].Clip != "quota" || f[1].Reason != "replay" {
		t.Fatalf("%+v", f)
	}
}

// playingSink plays what it is given in (synctest's) time: Drain waits
// until the audio written so far has played. It counts a Write that comes
// while an earlier sound is still playing: two sounds at once.
type playingSink struct {
	mu       sync.Mutex
	queued   time.Duration // audio written and not yet played, from last
	last     time.Time
	samples  int
	overlaps int
	flushes  int
	draining bool // a sound is being waited for
}

func (s *playingSink) Format() audio.Format { return audio.Format{SampleRate: 16000, Channels: 1} }
func (s *playingSink) played(now time.Time) {
	s.queued = max(s.queued-now.Sub(s.last), 0)
	s.last = now
}
func (s *playingSink) Write(_ context.Context, p []int16) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.played(time.Now())
	if s.queued > 0 && s.samples > 0 && len(p) > 0 && s.draining {
		s.overlaps++
	}
	s.queued += time.Duration(len(p)) * time.Second / 16000
	s.samples += len(p)
	return len(p), nil
}
func (s *playingSink) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.played(time.Now())
	wait := s.queued
	s.draining = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.draining = false; s.mu.Unlock() }()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(wait):
		return nil
	}
}
func (s *playingSink) Flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queued, s.last = 0, time.Now()
	s.flushes++
}
func (s *playingSink) Close() error { return nil }

// One sound at a time: a second f while the clip plays is dropped, and a
// replay waits for an earcon playing now.
func TestReplaysDoNotPlayOverEachOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		quota, err := fallback.Samples(fallback.Quota, fallback.Options{})
		if err != nil {
			t.Fatal(err)
		}
		earcon, err := fallback.Samples(fallback.EarconFailed, fallback.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var ev events
		spk := &playingSink{}
		p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add)}
		p.Earcon(fallback.EarconFailed, "turn_failed")
		p.Replay()
		p.Replay()
		p.Wait()
		f := ev.fallbacks()
		if len(f) != 2 || f[0].Clip != "earcon_failed" || f[1].Reason != "replay" || !f[1].OK {
			t.Fatalf("fallbacks %+v, want the earcon then one replay", f)
		}
		if spk.overlaps != 0 || spk.samples != len(earcon)+len(quota) {
			t.Fatalf("%d writes over a sound still playing, %d samples (earcon %d + clip %d)", spk.overlaps, spk.samples, len(earcon), len(quota))
		}
		// The replay is over: f plays it again.
		p.Replay()
		p.Wait()
		if f := ev.fallbacks(); len(f) != 3 || !f[2].OK || spk.samples != len(earcon)+2*len(quota) {
			t.Fatalf("fallbacks %+v, %d samples", f, spk.samples)
		}
	})
}

// A failure's signal does not wait behind a replay (as long as the
// closing clip itself): it cuts the replay short, and what the replay
// queued is flushed first.
func TestSignalsCutAReplayShort(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		signal       func(p *FallbackPlayer)
	}{
		{"closing clip", "quota_exhausted", func(p *FallbackPlayer) { p.Play(credits(), fallback.State{}) }},
		{"earcon", "turn_failed", func(p *FallbackPlayer) { p.Earcon(fallback.EarconFailed, "turn_failed") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var ev events
				spk := &playingSink{}
				p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add)}
				p.Replay()
				time.Sleep(time.Second) // the replay plays
				synctest.Wait()
				start := time.Now()
				tc.signal(p)
				p.Wait()
				took := time.Since(start)
				f := ev.fallbacks()
				if len(f) != 2 || f[0].Reason != "replay" || f[0].OK || !strings.Contains(f[0].Error, "cut short") ||
					f[1].Reason != tc.reason || !f[1].OK {
					t.Fatalf("fallbacks %+v, want the replay cut short, then the signal", f)
				}
				// Its own length and no more (the quota clip is 4 s; the
				// replay had 3 s left).
				signal, err := fallback.Samples(fallback.Clip(f[1].Clip), fallback.Options{})
				if err != nil {
					t.Fatal(err)
				}
				if length := time.Duration(len(signal)) * time.Second / 16000; took > length+100*time.Millisecond || spk.flushes != 1 || spk.overlaps != 0 {
					t.Fatalf("the signal took %v (it is %v long), %d flushes, %d overlaps", took, length, spk.flushes, spk.overlaps)
				}
			})
		})
	}
}

// With the sound off (--no-error-audio) a close plays nothing, so it cuts
// no replay: f still plays the clip to the end, for QA.
func TestSilentCloseLeavesAReplayPlaying(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		spk := &playingSink{}
		p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add), Options: fallback.Options{NoErrorAudio: true}}
		p.Replay()
		time.Sleep(time.Second)
		synctest.Wait()
		start := time.Now()
		p.Play(credits(), fallback.State{})
		if took := time.Since(start); took != 0 {
			t.Fatalf("a close with the sound off waited %v", took)
		}
		p.Wait()
		f := ev.fallbacks()
		if len(f) != 2 || f[0].Reason != "quota_exhausted" || f[0].Clip != "" || f[1].Reason != "replay" || !f[1].OK || spk.flushes != 0 {
			t.Fatalf("fallbacks %+v, %d flushes: want the silent close, then the whole replay", f, spk.flushes)
		}
	})
}

// f pressed while the closing clip waits for an earcon to end is dropped:
// started after the earcon, the replay would hold the closing clip back
// (it cuts only a replay already there).
func TestReplayDoesNotGetAheadOfAWaitingSignal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ev events
		spk := &playingSink{}
		p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add)}
		p.Earcon(fallback.EarconFailed, "turn_failed")
		closed := make(chan struct{})
		go func() { p.Play(credits(), fallback.State{}); close(closed) }()
		synctest.Wait() // the close waits for the earcon
		p.Replay()
		<-closed
		p.Wait()
		f := ev.fallbacks()
		if len(f) != 2 || f[0].Reason != "turn_failed" || f[1].Reason != "quota_exhausted" || !f[1].OK || spk.overlaps != 0 {
			t.Fatalf("fallbacks %+v, %d overlaps: want the earcon, then the closing clip, and no replay", f, spk.overlaps)
		}
	})
}

func TestFallbackPlayerSpeaksWhenTTSIsHealthyAndFallsBackToTheClip(t *testing.T) {
	var ev events
	spk := &sink{}
	p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add), Options: fallback.Options{ErrorMessage: "Sorry."},
		Speak: func(context.Context, string) error { return errors.New("tts: down") }}
	p.Play(errors.New("llm: broken"), fallback.State{})
	f := ev.fallbacks()
	if len(f) != 1 || f[0].Clip != "unavailable" || !f[0].OK || f[0].Error == "" || spk.samples == 0 {
		t.Fatalf("%+v", f)
	}
}

// Without a way to speak (a room), a message falls back to the clip.
func TestFallbackPlayerWithoutSpeech(t *testing.T) {
	var ev events
	spk := &sink{}
	p := &FallbackPlayer{Speaker: spk, Events: NewEmitter(ev.add), Options: fallback.Options{ErrorMessage: "Sorry."}}
	p.Play(errors.New("agent: gone"), fallback.State{})
	if f := ev.fallbacks(); len(f) != 1 || f[0].Clip != "unavailable" || !f[0].OK || f[0].Text != "" {
		t.Fatalf("%+v", f)
	}
}

func TestFallbackPlayerReportsAFailedSpeaker(t *testing.T) {
	var ev events
	p := &FallbackPlayer{Speaker: &sink{failed: errors.New("device gone")}, Events: NewEmitter(ev.add)}
	p.Play(credits(), fallback.State{})
	if f := ev.fallbacks(); len(f) != 1 || f[0].OK || f[0].Error == "" {
		t.Fatalf("%+v", f)
	}
}

// A queued emitter never waits for its consumer: what does not fit is
// dropped, counted, and said once there is room; Close delivers the rest.
func TestQueuedEmitterNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var got []Event
		var mu sync.Mutex
		e := NewQueuedEmitter(func(ev Event) {
			<-release // a reader that stalls
			mu.Lock()
			got = append(got, ev)
			mu.Unlock()
		}, 4)
		for i := range 10 {
			e.Emit(Transcript{Text: strconv.Itoa(i)}) // would deadlock the bubble if it waited
			if i == 0 {
				synctest.Wait() // the consumer holds it
			}
		}
		close(release)
		synctest.Wait()
		e.Emit(Transcript{Text: "after"})
		e.Close(time.Second)
		mu.Lock()
		defer mu.Unlock()
		var texts []string
		for _, ev := range got {
			switch p := ev.Payload.(type) {
			case Transcript:
				texts = append(texts, p.Text)
			case Dropped:
				texts = append(texts, fmt.Sprintf("dropped %d", p.Count))
			}
		}
		// The consumer held 0 while 1-4 waited; 5-9 were dropped.
		want := []string{"0", "1", "2", "3", "4", "dropped 5", "after"}
		if !slices.Equal(texts, want) {
			t.Fatalf("got %q, want %q", texts, want)
		}
	})
}
