package room

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/livekit/server-sdk-go/v2/pkg/media"
	"github.com/pion/webrtc/v4"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/agentwatch"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// run is the state of one Run; only the loop goroutine touches it.
type run struct {
	c  *Conversation
	o  Options
	in *inbox

	mics      chan conversation.MicPiece
	heard     chan time.Time // agent sound, coalesced
	spkFailed chan error     // the speaker failed: nobody hears the agent
	room      *lksdk.Room
	pub       *publisher
	remote    *media.PCMRemoteTrack
	speaker   *agentAudio
	dog       *agentwatch.Watchdog
	bg        sync.WaitGroup
	bgCancel  context.CancelFunc
	alarms    *conversation.Alarms
	agentID   string
	ready     chan struct{} // HoldInput: closed when the agent first listens
	bargedIn  bool          // the user spoke over the agent's reply
	segment   string        // the agent's transcript segment open, if any
	agent     string        // initializing, listening, thinking, speaking
	user      string        // speaking, listening
	vad       *audio.VoiceDetector
	meter     *audio.Meter
	speech    agentwatch.Speech
	speechEnd time.Time // the user's last, while its answer is awaited
	turns     int
	reply     strings.Builder // the agent's segment being spoken
	inputDone bool
	left      chan struct{} // closed once the room is left (leave)
}

func newRun(c *Conversation) *run {
	return &run{c: c, o: c.o, mics: make(chan conversation.MicPiece, 64), heard: make(chan time.Time, 1), spkFailed: make(chan error, 1),
		alarms: &conversation.Alarms{Player: c.Player, Events: c.o.Events, MaxUnrecoverable: c.o.MaxUnrecoverable, Trace: c.o.Trace},
		dog:    agentwatch.New(agentwatch.Thresholds{AgentWait: c.o.AgentWait, AnswerWait: c.o.AnswerWait, HeardVoice: heardVoice, ReconnectWait: c.o.ReconnectWait}),
		vad:    audio.NewVoiceDetector(audio.PipelineRate), meter: audio.NewMeter(audio.PipelineRate, 14)}
}

func (r *run) emit(p any) { r.o.Events.Emit(p) }

func (r *run) trace(mark string, at time.Time) {
	if r.o.Trace != nil {
		r.o.Trace(mark, at)
	}
}

func (r *run) setAgent(s string) {
	if s == "idle" {
		s = "listening"
	}
	if s == "listening" && r.ready != nil {
		close(r.ready) // HoldInput: the recording starts
		r.ready = nil
	}
	if s == "speaking" && r.agent != "speaking" {
		r.bargedIn = false // a new reply
	}
	if s != "" && s != r.agent {
		r.agent = s
		r.emit(conversation.State{Agent: r.agent, User: r.user})
	}
}

func (r *run) setUser(s string) {
	if s != r.user {
		if s == "speaking" && r.agent == "speaking" {
			r.bargedIn = true // the agent's reply ends interrupted
		}
		r.user = s
		r.emit(conversation.State{Agent: r.agent, User: r.user})
	}
}

func (r *run) loop(ctx context.Context) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	bgCtx, bgCancel := context.WithCancel(context.Background())
	r.bgCancel = bgCancel
	defer func() {
		cancel()
		bgCancel()
		done := make(chan struct{})
		go func() { r.bg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}()
	r.agent, r.user = "initializing", "listening"
	r.emit(conversation.State{Agent: r.agent, User: r.user})
	r.in = newInbox(bgCtx)
	if err := r.join(); err != nil {
		return r.close(ctx, err)
	}
	r.dog.Joined(time.Now())
	if p, ok := agentIn(r.room); ok {
		r.onParticipant(p)
	}
	r.bg.Add(3)
	var ready <-chan struct{}
	if r.o.HoldInput {
		r.ready = make(chan struct{})
		ready = r.ready
	}
	go func() { defer r.bg.Done(); conversation.ReadMic(bgCtx, r.o.Mic, ready, r.mics) }()
	speakerFailed := func(err error) {
		select {
		case r.spkFailed <- err:
		default:
		}
	}
	go func() { defer r.bg.Done(); conversation.WatchSpeaker(bgCtx, r.o.Speaker, speakerFailed) }()
	r.speaker = &agentAudio{pieces: make(chan []int16, 100), heard: func(t time.Time) {
		select {
		case r.heard <- t:
		default:
		}
	}}
	go func() {
		defer r.bg.Done()
		if err := play(bgCtx, r.o.Speaker, r.speaker.pieces, r.o.OutputLevel, r.c.Player.Sounding); err != nil {
			speakerFailed(err)
		}
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		timer.Reset(r.untilNext())
		var a *agentwatch.Alarm
		var err error
		select {
		case <-ctx.Done():
			return r.close(ctx, nil)
		case m := <-r.mics:
			err = r.onMic(m)
		case p := <-r.in.participants:
			a = r.onParticipant(p)
		case t := <-r.in.transcripts:
			a = r.onTranscript(t)
		case e := <-r.in.agentErrors:
			a = r.onAgentError(e.label)
		case c := <-r.in.conns:
			a = r.onConn(c)
		case track := <-r.in.tracks:
			r.onTrack(track)
		case at := <-r.heard:
			r.onAgentSound(at)
		case text := <-r.c.Typed():
			a = r.onTyped(text)
		case err = <-r.spkFailed:
			// Terminal: the agent would go on talking to nobody.
		case <-timer.C:
			a = r.dog.Tick(time.Now())
		}
		if a != nil {
			err = r.onAlarm(a)
		}
		if err != nil {
			return r.close(ctx, err)
		}
		// The input is over and the agent has answered all of it (an agent
		// that never came is the watchdog's to report).
		if r.inputDone && !r.speech.Speaking() && r.dog.Quiet() && r.agentID != "" && r.agent != "initializing" {
			return r.close(ctx, io.EOF)
		}
	}
}

// untilNext is how long the loop may wait before the watchdog's next
// deadline.
func (r *run) untilNext() time.Duration {
	next := r.dog.Next()
	if next.IsZero() {
		return time.Hour
	}
	return max(time.Until(next), time.Millisecond)
}

// join connects and publishes the microphone.
func (r *run) join() error {
	tok, err := r.o.token()
	if err != nil {
		return &Error{Stage: "room", Message: "cannot make a join token", Err: err, Terminal: true}
	}
	room, err := lksdk.ConnectToRoomWithToken(r.o.URL, tok, r.in.callbacks(), lksdk.WithAutoSubscribe(true), lksdk.WithConnectTimeout(10*time.Second))
	if err != nil {
		return &Error{Stage: "room", Message: "cannot join " + safetext.Sanitize(r.o.URL, 200), Err: errors.New(safetext.Sanitize(err.Error(), 300)),
			Hint: agentwatch.HintRoom, Terminal: true}
	}
	r.room = room
	if err := r.in.listen(room, room.LocalParticipant.Identity()); err != nil {
		return &Error{Stage: "room", Message: "cannot listen to the agent's transcripts", Err: err, Terminal: true}
	}
	r.pub, err = newPublisher()
	if err == nil {
		_, err = room.LocalParticipant.PublishTrack(r.pub.track, &lksdk.TrackPublicationOptions{Name: "microphone", Source: livekit.TrackSource_MICROPHONE})
	}
	if err != nil {
		return &Error{Stage: "room", Message: "cannot publish the microphone", Err: err, Terminal: true}
	}
	return nil
}

func (r *run) onMic(m conversation.MicPiece) error {
	if m.End {
		if m.Err != nil {
			return m.Err // a microphone that failed: the conversation cannot go on
		}
		r.inputDone = true
		if r.speech.Speaking() {
			r.endSpeech() // the input ended mid-speech: that speech is owed a reaction too
		}
		return nil
	}
	pcm := m.PCM
	if r.c.Muted() {
		pcm = make([]int16, len(pcm))
	}
	if r.o.InputLevel != nil {
		r.o.InputLevel(r.meter.Update(pcm))
	}
	r.vad.Feed(pcm, r.onVoiceFrame)
	return r.pub.write(pcm)
}

// onVoiceFrame follows the user's speech with the local voice detector:
// the user state, and the end of speech the watchdog and the metrics
// count from.
func (r *run) onVoiceFrame(voiced bool, _ float64) {
	started, stopped := r.speech.Frame(voiced)
	if started {
		r.setUser("speaking")
	}
	if stopped {
		r.endSpeech()
	}
}

// endSpeech: the user stopped speaking.
func (r *run) endSpeech() {
	voiced, silence := r.speech.End()
	r.setUser("listening")
	r.speechEnd = time.Now().Add(-silence) // the voice ended before the silence that says so
	r.trace("speech_end", r.speechEnd)
	r.dog.UserSpoke(time.Now(), voiced)
	if voiced >= heardVoice && (r.agentID == "" || r.agent == "" || r.agent == "initializing") {
		// Said before the agent listened: it did not hear it, and it
		// owes nothing, so without this the user would wait in silence.
		r.emit(conversation.Error{Stage: "agent", Message: "you spoke before the agent was listening: it did not hear that",
			Retryable: true, Attempt: 1, Hint: "wait for \"agent listening\", then say it again"})
	}
}

func (r *run) onParticipant(p participantMsg) *agentwatch.Alarm {
	if !p.agent {
		return nil
	}
	if p.left {
		if p.identity != r.agentID {
			return nil
		}
		r.agentID = ""
		if p.lost {
			// The SDK drops everyone when it reconnects in full; this may
			// reach the loop before the reconnecting itself.
			a := r.dog.Reconnecting(time.Now())
			r.dog.AgentLeft("")
			return a
		}
		return r.dog.AgentLeft(reasonText(p.reason))
	}
	if r.agentID == "" {
		r.agentID = p.identity
		r.dog.AgentJoined()
	}
	if p.state != "" {
		a := r.dog.AgentStateChanged(time.Now(), p.state)
		if r.agent == "speaking" && p.state != "speaking" && r.segment == "" {
			// A segment still open ends with its stream: what it
			// still brings belongs to this reply, not to a line of its own.
			r.finishReply(false)
		}
		r.setAgent(p.state)
		return a
	}
	return nil
}

func (r *run) onTranscript(t transcriptMsg) *agentwatch.Alarm {
	if t.user {
		if t.text != "" {
			r.emit(conversation.Transcript{Text: t.text, Final: t.final})
		}
		return r.dog.UserTranscript(time.Now(), t.final && t.text != "")
	}
	if t.text != "" {
		if r.segment != "" && t.segment != r.segment {
			r.finishReply(false) // a new segment before the last one ended
		}
		r.segment = t.segment
		text := safetext.Inert(t.text)
		r.reply.WriteString(text)
		r.emit(conversation.AgentText{Text: text})
	}
	if t.done && (t.segment == r.segment || r.segment == "") {
		r.finishReply(false)
	}
	return nil
}

// finishReply emits the agent's segment as said; interrupted when the
// user spoke over it (the agent stops it then: its state and the end of
// its transcript come in either order, so neither tells).
func (r *run) finishReply(interrupted bool) {
	if text := strings.TrimSpace(r.reply.String()); text != "" {
		r.emit(conversation.AgentText{Text: text, Final: true, Interrupted: interrupted || r.bargedIn})
	}
	r.reply.Reset()
	r.segment = ""
}

// onAgentError: an error the agent reported. While it owes an answer it
// is an alarm (its event and the earcon); otherwise it is said only.
func (r *run) onAgentError(label string) *agentwatch.Alarm {
	a := r.dog.AgentError(label)
	if a == nil {
		r.emit(conversation.Error{Stage: "agent", Message: "the agent reported an error in " + agentwatch.Component(label),
			Retryable: true, Attempt: 1, Hint: "the agent's own log says more"})
	}
	return a
}

func (r *run) onConn(c connMsg) *agentwatch.Alarm {
	switch {
	case c.reconnecting:
		return r.dog.Reconnecting(time.Now())
	case c.reconnected:
		if r.dog.Reconnected(time.Now()) {
			r.emit(conversation.Device{Device: "room connection", Stage: "room", OK: true, Message: "the connection to the room is back"})
		}
	case c.disconnected:
		return r.dog.Disconnected(reasonText(c.reason))
	}
	return nil
}

func (r *run) onTrack(track *webrtc.TrackRemote) {
	if r.remote != nil {
		r.remote.Close()
	}
	remote, err := subscribe(track, r.speaker)
	if err != nil {
		r.emit(conversation.Error{Stage: "room", Message: "cannot play the agent's audio: " + safetext.Sanitize(err.Error(), 200), Attempt: 1})
		return
	}
	r.remote = remote
}

// onAgentSound: the agent was heard. The first sound after the user's
// turn ends it: the metrics of the turn.
func (r *run) onAgentSound(at time.Time) {
	r.dog.AgentAudio()
	r.alarms.Answered()
	if !r.speechEnd.IsZero() {
		r.turns++
		r.trace("first_agent_audio", at)
		r.emit(conversation.Metrics{Turn: r.turns, E2EMs: at.Sub(r.speechEnd).Milliseconds()})
		r.speechEnd = time.Time{}
	}
}

func (r *run) onTyped(typed string) *agentwatch.Alarm {
	text := safetext.Sanitize(typed, 2000)
	if text == "" {
		return nil
	}
	r.room.LocalParticipant.SendText(text, lksdk.StreamTextOptions{Topic: topicChat})
	r.emit(conversation.Transcript{Text: text, Final: true})
	r.speechEnd = time.Now()
	return r.dog.TypedTurn(time.Now())
}

// onAlarm tells the user at once: an error event with the alarm's hint,
// and a sound. A failure the conversation survives is the earcon (the
// agent may still retry, the connection come back); the agent giving up
// on the turn is the clip. A terminal alarm, or one failure too many,
// ends the conversation (the clip plays in the close).
func (r *run) onAlarm(a *agentwatch.Alarm) error {
	return r.alarms.Raise(a, func(msg string, terminal bool) error {
		return &Error{Stage: a.Stage, Message: msg, Hint: a.Hint, Terminal: terminal}
	})
}

// close ends the conversation: on an error the fallback plays while the
// room is left (both bounded: the close after a lost server is the wait,
// then the clip), then the close event is said. cause is nil (the user),
// io.EOF (the input ended) or the error.
func (r *run) close(ctx context.Context, cause error) error {
	r.finishReply(r.agent == "speaking")
	if cause != nil && cause != io.EOF {
		r.emit(*conversation.ErrorInfo(cause, r.alarms.Attempt()))
		r.bgCancel() // no more of the agent's audio (before the flush: a piece being written would slip in)
		r.o.Speaker.Flush()
		r.leave() // while the clip plays
		r.alarms.Close(cause)
	}
	r.bgCancel()
	r.alarms.Close(nil) // a clip still playing is heard to its end first
	<-r.leave()
	if r.pub != nil {
		r.pub.close()
	}
	r.emit(conversation.Ended(cause, r.alarms.Attempt()))
	if cause == io.EOF {
		return nil
	}
	return cause
}

// leave leaves the room once, in the background; the channel closes when
// it has, or after closeWait (a server gone does not answer).
func (r *run) leave() <-chan struct{} {
	if r.left != nil {
		return r.left
	}
	left := make(chan struct{})
	r.left = left
	done := make(chan struct{})
	go func() {
		defer close(done)
		if r.room != nil {
			if r.remote != nil {
				r.remote.Close()
			}
			r.room.Disconnect()
		}
	}()
	go func() {
		defer close(left)
		select {
		case <-done:
		case <-time.After(closeWait):
		}
	}()
	return left
}
