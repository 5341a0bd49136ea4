package session

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// One goroutine, the loop, owns a run's state. Everything else (the
// microphone reader, the STT writer and reader, each reply) tells it what
// happened through a channel of its own, so each source's messages keep
// their order.

// micMsg is microphone audio, the end of the input (err nil: the input
// ended; else the microphone failed), or news from the reopening of a
// failed microphone: back (working again; pcm is its first audio) or
// gaveUp (err says why).
type micMsg struct {
	pcm    []int16
	end    bool
	err    error
	back   audio.Source
	gaveUp bool
}

// sttMsg is an STT event, or the failure of the stream (err set).
type sttMsg struct {
	link *sttLink
	ev   provider.STTEvent
	err  error
}

// replyMsg is a reply whose first audio reached the speaker, or one that
// ended (done; err says why when it failed).
type replyMsg struct {
	t    *turn
	done bool
	err  error
}

// run is the state of one Run; only the loop goroutine touches it.
type run struct {
	s *Session
	o Options

	mics      chan micMsg
	stts      chan sttMsg
	replies   chan replyMsg
	timeouts  chan int   // finalizes that were not answered in time, by id
	speaker   chan error // the speaker failed while nothing was playing
	agent     string     // initializing, listening, thinking, speaking
	user      string     // speaking, listening
	listen    listener
	stt       sttState
	turn      *turn // the agent's reply in progress
	turnCount int
	history   []provider.Message
	policy    errorPolicy
	inputDone bool
	turnAudio bool         // STT takes the user's turns only (provider.TurnAudio)
	mic       audio.Source // the microphone being read; nil while it is down
	micOpened bool         // mic was opened by the session (ReopenMic), not given
	bg        sync.WaitGroup
}

func newRun(s *Session) *run {
	return &run{s: s, o: s.o,
		mics: make(chan micMsg, 64), stts: make(chan sttMsg, 64), replies: make(chan replyMsg, 8), timeouts: make(chan int, 8),
		speaker: make(chan error, 1),
		history: []provider.Message{{Role: "system", Content: s.o.SystemPrompt}},
		policy:  errorPolicy{counts: map[provider.Stage]int{}},
	}
}

// post hands m to the loop unless ctx is over.
func post[T any](ctx context.Context, ch chan<- T, m T) {
	select {
	case ch <- m:
	case <-ctx.Done():
	}
}

func (r *run) trace(mark string, at time.Time) {
	if r.o.Trace != nil {
		r.o.Trace(mark, at)
	}
}

func (r *run) emit(payload any) { r.o.Events.Emit(payload) }

func (r *run) emitState() { r.emit(conversation.State{Agent: r.agent, User: r.user}) }

func (r *run) setAgent(state string) {
	if r.agent != state {
		r.agent = state
		r.emitState()
	}
}

func (r *run) setUser(state string) {
	if r.user != state {
		r.user = state
		r.emitState()
	}
}

func (r *run) loop(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		// Everything honours ctx; a provider that does not gets 3 s,
		// then Run returns anyway.
		done := make(chan struct{})
		go func() { r.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}()
	r.agent, r.user = "initializing", "listening"
	r.emitState()
	r.listen = newListener()
	if ta, ok := r.o.STT.(provider.TurnAudio); ok && ta.TurnAudioOnly() {
		r.turnAudio = true
	}

	if err := r.openSTT(ctx); err != nil {
		if err = r.onSTTFailure(ctx, err); err != nil {
			return r.close(ctx, err)
		}
	}
	r.mic = r.o.Mic
	defer func() {
		// (Sources are not compared: one may hold an uncomparable value.)
		if r.mic != nil && r.micOpened {
			r.mic.Close() // one the session opened
		}
	}()
	r.bg.Add(1)
	go r.readMic(ctx, r.mic)
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		conversation.WatchSpeaker(ctx, r.o.Speaker, func(err error) { post(ctx, r.speaker, err) })
	}()
	r.setAgent("listening")

	for {
		var err error
		select {
		case <-ctx.Done():
			return r.close(ctx, nil)
		case m := <-r.mics:
			err = r.onMic(ctx, m)
		case m := <-r.stts:
			err = r.onSTTMsg(ctx, m)
		case m := <-r.replies:
			err = r.onReply(ctx, m)
		case id := <-r.timeouts:
			err = r.onFinalizeTimeout(ctx, id)
		case text := <-r.s.typed:
			r.onTyped(ctx, text)
		case err = <-r.speaker:
			// A dead speaker ends the session: nobody would hear the rest.
		}
		if err != nil {
			return r.close(ctx, err)
		}
		if r.inputDone && !r.listen.speaking && len(r.stt.pending) == 0 && r.turn == nil {
			return r.close(ctx, io.EOF)
		}
	}
}

func (r *run) onMic(ctx context.Context, m micMsg) error {
	switch {
	case m.back != nil:
		r.onMicBack(ctx, m.back, m.pcm)
		return nil
	case m.gaveUp:
		return m.err
	case !m.end:
		r.onAudio(ctx, m.pcm)
		return nil
	case m.err != nil:
		return r.onMicFailure(ctx, m.err)
	}
	// The input is over: what follows is silence, so the current turn
	// ends as it would in a quiet room.
	r.inputDone = true
	r.onAudio(ctx, make([]int16, int(r.o.EndSilence/frameDur+1)*audio.PipelineRate/50))
	return nil
}

// onTyped takes a typed turn as the user's words.
func (r *run) onTyped(ctx context.Context, typed string) {
	text := safetext.Sanitize(typed, 2000)
	if text == "" {
		return
	}
	r.emit(conversation.Transcript{Text: text, Final: true})
	r.stt.finals = []string{text}
	now := time.Now()
	r.userTurn(ctx, pendingFinalize{sent: now, speechEnd: now})
}

func (r *run) onReply(ctx context.Context, m replyMsg) error {
	if m.t != r.turn {
		return nil // an interrupted turn finishing
	}
	if !m.done {
		r.setAgent("speaking")
		r.listen.vad.Boost = r.o.HalfDuplex
		if r.o.EchoCancelled != nil && r.o.EchoCancelled() {
			// The user can talk over the agent at a normal voice; the
			// canceller's residue cannot.
			r.listen.vad.Boost, r.listen.vad.Residue = 0, EchoResidue
		}
		r.policy.spoke()
		return nil
	}
	return r.onTurnDone(ctx, m.t, m.err)
}
