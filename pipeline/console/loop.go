package console

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/livekit/protocol/livekit/agent"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/agentwatch"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// run is the state of one Run; only the loop goroutine touches it.
type run struct {
	c *Conversation
	o Options

	proc      *process
	ln        net.Listener
	conn      net.Conn
	out       *sender
	outbox    *outbox
	connected chan net.Conn
	inbox     chan *agent.AgentSessionMessage
	readErr   chan error
	mics      chan conversation.MicPiece
	heard     chan time.Time
	finished  chan struct{}
	spkFailed chan error
	player    *player
	frames    *micFrames
	dog       *agentwatch.Watchdog
	bg        sync.WaitGroup
	bgCancel  context.CancelFunc

	alarms    *conversation.Alarms
	ready     chan struct{} // HoldInput: closed when the agent first listens
	agent     string        // initializing, listening, thinking, speaking
	user      string
	vad       *audio.VoiceDetector
	meter     *audio.Meter
	speech    agentwatch.Speech
	speechEnd time.Time // the user's last, while its answer is awaited
	turns     int
	requests  int
	inputDone bool
	warnedAt  time.Time // the last rate-limit refusal said (one per turn)
	usage     conversation.Usage
	joined    bool // the agent's session has started
	secrets   *provider.Redactor
	playerEnd chan struct{}
}

func newRun(c *Conversation) *run {
	return &run{c: c, o: c.o,
		outbox: newOutbox(), connected: make(chan net.Conn, 1),
		inbox: make(chan *agent.AgentSessionMessage, 256), readErr: make(chan error, 1),
		mics: make(chan conversation.MicPiece, 64), heard: make(chan time.Time, 1), finished: make(chan struct{}, 8),
		spkFailed: make(chan error, 1), frames: newMicFrames(),
		alarms: &conversation.Alarms{Player: c.Player, Events: c.o.Events, MaxUnrecoverable: c.o.MaxUnrecoverable, Trace: c.o.Trace},
		dog: agentwatch.New(agentwatch.Thresholds{AgentWait: c.o.ConnectWait, AnswerWait: c.o.AnswerWait, HeardVoice: heardVoice,
			ReconnectWait: time.Hour}),
		vad: audio.NewVoiceDetector(audio.PipelineRate), meter: audio.NewMeter(audio.PipelineRate, 14)}
}

func (r *run) emit(p any) { r.o.Events.Emit(p) }

func (r *run) trace(mark string, at time.Time) {
	if r.o.Trace != nil {
		r.o.Trace(mark, at)
	}
}

func (r *run) loop(ctx context.Context) error {
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
		case <-time.After(3 * time.Second):
		}
	}()
	r.agent, r.user = "initializing", "listening"
	r.emit(conversation.State{Agent: r.agent, User: r.user})

	if ctx.Err() != nil {
		return r.close(nil) // cancelled before anything started
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return r.close(&Error{Stage: "agent", Terminal: true, Message: "cannot listen on 127.0.0.1 for the agent: " + safetext.Sanitize(err.Error(), 200),
			Hint: "is the loopback interface up, and are local ports free?"})
	}
	r.ln = ln
	defer ln.Close()
	r.proc, err = start(r.o.Command, ln.Addr().String(), r.o.Dir, r.o.Env, r.o.Log)
	if err != nil {
		return r.close(&Error{Stage: "agent", Terminal: true, Message: safetext.Sanitize(err.Error(), 300)})
	}
	r.c.agent.Store(r.proc)
	r.dog.Joined(time.Now())
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		// The agent, and only it: a connection from another user is
		// refused (it would hear the microphone); the listener closes
		// with the loop.
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			if !sameUser(conn) {
				conn.Close()
				continue
			}
			select {
			case r.connected <- conn:
			case <-bgCtx.Done():
				conn.Close()
			}
			return
		}
	}()

	r.bg.Add(4)
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
	r.player = newPlayer(r.o.Speaker)
	r.player.level, r.player.hold = r.o.OutputLevel, r.c.Player.Sounding
	r.player.heard = func(t time.Time) {
		select {
		case r.heard <- t:
		default:
		}
	}
	r.player.finished = func() {
		select {
		case r.finished <- struct{}{}: // never dropped: the agent holds its turn until told
		case <-bgCtx.Done():
		}
	}
	r.playerEnd = make(chan struct{})
	go func() {
		defer r.bg.Done()
		defer close(r.playerEnd)
		if err := r.player.run(bgCtx); err != nil {
			speakerFailed(err)
		}
	}()
	go func() { defer r.bg.Done(); r.write(bgCtx) }()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		next := r.dog.Next()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		var a *agentwatch.Alarm
		var err error
		select {
		case <-ctx.Done():
			return r.close(nil)
		case conn := <-r.connected:
			r.onConnected(bgCtx, conn)
		case m := <-r.inbox:
			a, err = r.onMessage(m)
		case rerr := <-r.readErr:
			err = r.onSocketEnd(rerr)
		case <-r.proc.exited:
			err = r.exited()
		case m := <-r.mics:
			err = r.onMic(m)
		case rf := <-r.o.Refusals:
			err = r.onRefused(rf)
		case at := <-r.heard:
			r.onAgentSound(at)
		case <-r.finished:
			r.send(&agent.AgentSessionMessage{Message: &agent.AgentSessionMessage_AudioPlaybackFinished{
				AudioPlaybackFinished: &agent.AgentSessionMessage_ConsoleIO_AudioPlaybackFinished{}}})
		case text := <-r.c.Typed():
			a = r.onTyped(text)
		case err = <-r.spkFailed:
		case <-timer.C:
			a = r.dog.Tick(time.Now())
		}
		if a != nil {
			err = r.onAlarm(a)
		}
		if err != nil {
			return r.close(err)
		}
		if r.inputDone && !r.speech.Speaking() && r.dog.Quiet() && r.conn != nil && r.agent != "initializing" && !r.player.pending() {
			return r.close(io.EOF)
		}
	}
}

// onConnected: the agent connected; its messages are read from now.
func (r *run) onConnected(ctx context.Context, conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	r.conn = conn
	r.out = &sender{conn: conn}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		br := bufio.NewReaderSize(conn, 64<<10)
		for {
			m, err := readMsg(br)
			if err != nil {
				r.readErr <- err
				return
			}
			select {
			case r.inbox <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// send queues a message for the agent (nothing before it connected).
func (r *run) send(m *agent.AgentSessionMessage) {
	if r.conn != nil {
		r.outbox.put(m)
	}
}

// write sends the queued messages, in order, control first.
func (r *run) write(ctx context.Context) {
	for {
		m := r.outbox.take()
		if m == nil {
			select {
			case <-ctx.Done():
				return
			case <-r.outbox.wake:
			}
			continue
		}
		if r.out.send(m) != nil {
			return // the reader sees the socket end
		}
	}
}

func (r *run) setAgent(s string) {
	if s == "listening" && r.ready != nil {
		close(r.ready) // HoldInput: the recording starts
		r.ready = nil
	}
	if s != "" && s != r.agent {
		r.agent = s
		r.emit(conversation.State{Agent: r.agent, User: r.user})
	}
}

func (r *run) setUser(s string) {
	if s != r.user {
		r.user = s
		r.emit(conversation.State{Agent: r.agent, User: r.user})
	}
}

var agentStates = map[agent.AgentState]string{
	agent.AgentState_AS_INITIALIZING: "initializing", agent.AgentState_AS_IDLE: "listening",
	agent.AgentState_AS_LISTENING: "listening", agent.AgentState_AS_THINKING: "thinking", agent.AgentState_AS_SPEAKING: "speaking",
}

// onMessage handles one message from the agent.
func (r *run) onMessage(m *agent.AgentSessionMessage) (*agentwatch.Alarm, error) {
	switch {
	case m.GetAudioOutput() != nil:
		pcm, rate, ok := samples(m.GetAudioOutput())
		if ok {
			r.player.push(item{pcm: pcm, rate: rate})
		}
	case m.GetAudioPlaybackFlush() != nil:
		r.player.push(item{flush: true})
	case m.GetAudioPlaybackClear() != nil:
		r.player.clear()
	case m.GetEvent() != nil:
		return r.onEvent(m.GetEvent()), nil
	}
	return nil, nil
}

func (r *run) onEvent(e *agent.AgentSessionEvent) *agentwatch.Alarm {
	now := time.Now()
	switch {
	case e.GetAgentStateChanged() != nil:
		s := agentStates[e.GetAgentStateChanged().GetNewState()]
		if s != "initializing" && !r.joined {
			// Here once its session runs: an agent that connected and
			// never got going is still the connect wait's to report.
			r.joined = true
			r.dog.AgentJoined()
		}
		switch {
		case s == "speaking":
			r.player.pause(false) // a false interruption: what was kept plays on
		case r.agent == "speaking":
			r.player.pause(true) // barge-in: the agent paused (it says so only here)
		}
		a := r.dog.AgentStateChanged(now, s)
		r.setAgent(s)
		return a
	case e.GetAgentFalseInterruption() != nil:
		if e.GetAgentFalseInterruption().GetResumed() {
			r.player.pause(false)
		}
	case e.GetUserInputTranscribed() != nil:
		t := e.GetUserInputTranscribed()
		text := safetext.Sanitize(t.GetTranscript(), 2000)
		if text != "" {
			r.emit(conversation.Transcript{Text: text, Final: t.GetIsFinal()})
		}
		return r.dog.UserTranscript(now, t.GetIsFinal() && text != "")
	case e.GetConversationItemAdded() != nil:
		msg := e.GetConversationItemAdded().GetItem().GetMessage()
		if msg.GetRole() != agent.ChatRole_ASSISTANT {
			return nil // the user's turns were shown as they were transcribed or typed
		}
		var parts []string
		for _, c := range msg.GetContent() {
			if t := strings.TrimSpace(c.GetText()); t != "" {
				parts = append(parts, t)
			}
		}
		if text := safetext.Inert(strings.Join(parts, " ")); text != "" {
			r.emit(conversation.AgentText{Text: text, Final: true, Interrupted: msg.GetInterrupted()})
		}
	case e.GetFunctionToolsExecuted() != nil:
		r.onTools(e.GetFunctionToolsExecuted())
	case e.GetSessionUsageUpdated() != nil:
		r.onUsage(e.GetSessionUsageUpdated().GetUsage())
	case e.GetError() != nil:
		label := safetext.Sanitize(e.GetError().GetMessage(), 120)
		a := r.dog.AgentError(label)
		if a == nil {
			r.emit(conversation.Error{Stage: "agent", Message: "the agent reported an error in " + agentwatch.Component(label),
				Retryable: true, Attempt: 1, Hint: r.logHint("the agent's log says more")})
		}
		return a
	}
	return nil
}

// onTools shows the tools the agent ran, each with its output.
func (r *run) onTools(t *agent.AgentSessionEvent_FunctionToolsExecuted) {
	outputs := map[string]*agent.FunctionCallOutput{}
	for _, o := range t.GetFunctionCallOutputs() {
		outputs[o.GetCallId()] = o
	}
	for _, c := range t.GetFunctionCalls() {
		ev := conversation.Tool{Name: safetext.Sanitize(c.GetName(), 80), Arguments: safetext.Sanitize(c.GetArguments(), 120)}
		if o, ok := outputs[c.GetCallId()]; ok {
			ev.OK, ev.Output = !o.GetIsError(), safetext.Sanitize(unquote(o.GetOutput()), 200)
		} else {
			ev.Output = "no output"
		}
		r.emit(ev)
	}
}

func (r *run) onUsage(u *agent.AgentSessionUsage) {
	var ev conversation.Usage
	for _, m := range u.GetModelUsage() {
		switch {
		case m.GetLlm() != nil:
			ev.LLMInputTokens += int(m.GetLlm().GetInputTokens())
			ev.LLMOutputTokens += int(m.GetLlm().GetOutputTokens())
		case m.GetTts() != nil:
			ev.TTSCharacters += int(m.GetTts().GetCharactersCount())
		case m.GetStt() != nil:
			ev.STTAudioSeconds += m.GetStt().GetAudioDuration()
		}
	}
	if ev != r.usage {
		r.usage = ev
		r.emit(ev)
	}
}

var stages = map[localgw.Stage]provider.Stage{localgw.LLM: provider.StageLLM, localgw.STT: provider.StageSTT,
	localgw.TTS: provider.StageTTS, localgw.BargeIn: provider.StageSTT}

// onRefused: the agent's gateway refused one of its requests. Its body is
// the agent's real error, which the agent reduces to a label and retries:
// a terminal one (credits used up) closes the conversation at once, with
// the quota clip; a transient one (a rate limit) is said, with the earcon,
// once per turn, and the agent rides it out.
func (r *run) onRefused(rf localgw.Refused) error {
	r.trace("refused", time.Now())
	err := provider.FromResponse(stages[rf.Stage], rf.Status, rf.Header, rf.Body)
	if provider.Terminal(err) {
		return err
	}
	ev := *conversation.ErrorInfo(err, 1)
	ev.Hint = "the agent retries it"
	r.emit(ev)
	if time.Since(r.warnedAt) > r.o.AnswerWait {
		r.warnedAt = time.Now()
		r.trace("fallback_start", time.Now())
		r.c.Player.Earcon(fallback.EarconFailed, "rate_limited")
	}
	return nil
}

func (r *run) onMic(m conversation.MicPiece) error {
	if m.End {
		if m.Err != nil {
			return m.Err
		}
		r.inputDone = true
		if r.speech.Speaking() {
			r.endSpeech()
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
	for _, msg := range r.frames.messages(pcm) {
		r.send(msg)
	}
	return nil
}

func (r *run) onVoiceFrame(voiced bool, _ float64) {
	started, stopped := r.speech.Frame(voiced)
	if started {
		r.setUser("speaking")
	}
	if stopped {
		r.endSpeech()
	}
}

func (r *run) endSpeech() {
	voiced, silence := r.speech.End()
	r.setUser("listening")
	r.speechEnd = time.Now().Add(-silence)
	r.trace("speech_end", r.speechEnd)
	r.dog.UserSpoke(time.Now(), voiced)
	if voiced >= heardVoice && (r.conn == nil || r.agent == "initializing") {
		r.emit(conversation.Error{Stage: "agent", Message: "you spoke before the agent was listening: it did not hear that",
			Retryable: true, Attempt: 1, Hint: "wait for \"agent listening\", then say it again"})
	}
}

// onAgentSound: the agent was heard at the speaker.
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
	if r.conn == nil {
		r.emit(conversation.Error{Stage: "agent", Message: "the agent is not connected yet: that was not sent", Retryable: true, Attempt: 1,
			Hint: "wait for \"agent listening\", then type it again"})
		return nil
	}
	r.requests++
	r.send(&agent.AgentSessionMessage{Message: &agent.AgentSessionMessage_Request{Request: &agent.SessionRequest{
		RequestId: fmt.Sprintf("voicetui-%d", r.requests),
		Request:   &agent.SessionRequest_RunInput_{RunInput: &agent.SessionRequest_RunInput{Text: text}}}}})
	r.emit(conversation.Transcript{Text: text, Final: true})
	r.speechEnd = time.Now()
	return r.dog.TypedTurn(time.Now())
}

// onAlarm tells the user at once, as room mode does: the error with its
// hint, the earcon for a failure the conversation survives, the clip when
// the agent gave up; a terminal alarm or one failure too many closes.
func (r *run) onAlarm(a *agentwatch.Alarm) error {
	msg, hint := a.Message, a.Hint
	if a.Kind == agentwatch.NoAgent {
		msg = fmt.Sprintf("the agent did not connect within %s", r.o.ConnectWait)
		hint = r.logHint("does its entry start an AgentSession? (it connects only then)")
		if r.conn != nil {
			msg = fmt.Sprintf("the agent connected but its session did not start within %s", r.o.ConnectWait)
			hint = r.logHint("")
		}
	}
	said := *a
	said.Message, said.Hint = msg, hint
	return r.alarms.Raise(&said, func(msg string, terminal bool) error {
		return &Error{Stage: a.Stage, Message: msg, Hint: hint, Terminal: terminal}
	})
}

// onSocketEnd: the agent closed the console connection (or sent what is
// not the protocol). An agent that died closes it too: its exit, when it
// follows at once, says more.
func (r *run) onSocketEnd(err error) error {
	select {
	case <-r.proc.exited:
		return r.exited()
	case <-time.After(300 * time.Millisecond):
	}
	msg := "the agent closed the console connection"
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		msg += ": " + safetext.Sanitize(err.Error(), 200)
	}
	e := agentError("%s", msg)
	e.Hint = r.logHint("its session ended")
	return e
}

// exited: the agent's process ended.
func (r *run) exited() error {
	e := agentError("the agent %s", r.proc.exitText())
	if r.conn == nil {
		e.Message += " before it connected"
	}
	e.Hint = r.proc.diagnose(r.o.Dir)
	if e.Hint != "" && r.o.LogName != "" {
		e.Hint += "; its log: " + r.o.LogName
	}
	if e.Hint == "" {
		e.Hint = r.logHint("")
	}
	return e
}

// redact hides the secrets of the agent's environment in what its log
// says (a key it echoed, a token in a URL).
func (r *run) redact(s string) string {
	if r.secrets == nil {
		var vals []string
		for _, kv := range r.o.Env {
			k, v, _ := strings.Cut(kv, "=")
			if k = strings.ToUpper(k); strings.Contains(k, "KEY") || strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") || strings.Contains(k, "PASSWORD") {
				vals = append(vals, v)
			}
		}
		red := provider.NewRedactor(vals...)
		r.secrets = &red
	}
	return r.secrets.String(provider.SafeText(s, 200))
}

// logHint is what the agent's last lines say, and where its log is.
func (r *run) logHint(fallbackHint string) string {
	var parts []string
	if fallbackHint != "" {
		parts = append(parts, fallbackHint)
	}
	if last := r.proc.lastLines(3, r.redact); last != "" {
		parts = append(parts, "its last lines: "+last)
	}
	if r.o.LogName != "" {
		parts = append(parts, "its log: "+r.o.LogName)
	}
	return safetext.Sanitize(strings.Join(parts, "; "), 600)
}

// close ends the conversation: on an error the fallback plays while the
// agent is stopped; then the close event. cause is nil (the user), io.EOF
// (the input ended) or the error.
func (r *run) close(cause error) error {
	if r.ln != nil {
		r.ln.Close() // no agent connects from now
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		if r.proc != nil {
			r.proc.stop()
		}
		if r.conn != nil {
			r.conn.Close()
		}
		select {
		case conn := <-r.connected: // one that connected as the loop ended
			conn.Close()
		default:
		}
	}()
	if r.bgCancel != nil {
		r.bgCancel() // no more of the agent's audio
	}
	if r.playerEnd != nil {
		select { // a piece being written ends before the clip starts
		case <-r.playerEnd:
		case <-time.After(time.Second):
		}
	}
	if cause != nil && cause != io.EOF {
		r.emit(*conversation.ErrorInfo(cause, r.alarms.Attempt()))
		r.o.Speaker.Flush()
		r.alarms.Close(cause)
	}
	r.alarms.Close(nil) // a clip still playing is heard to its end first
	<-stopped
	r.emit(conversation.Ended(cause, r.alarms.Attempt()))
	if cause == io.EOF {
		return nil
	}
	return cause
}

// unquote reads a tool's output: agents-js sends it JSON-encoded (a
// string tool result arrives quoted).
func unquote(s string) string {
	var v string
	if json.Unmarshal([]byte(s), &v) == nil {
		return v
	}
	return s
}
