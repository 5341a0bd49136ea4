package pipelinetest

import (
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Scripted fakes of the provider interfaces and of a microphone, for
// tests of a conversation's state machine. They keep time only with the
// time package, so under testing/synctest the whole conversation runs on
// the bubble's fake clock: a test of a 5 s timeout takes milliseconds.
// Every wait honours its context.

// LLM answers each Chat with Reply(n) for its n-th call (from 1).
type LLM struct {
	Reply func(n int) Reply
	// OnRetry hears the retries a Reply's Retries stand for, as a real
	// provider's Retry.OnRetry hook would.
	OnRetry func(attempt int, err error, wait time.Duration)

	mu    sync.Mutex
	calls [][]provider.Message
}

// Reply is how the LLM answers one request.
type Reply struct {
	Text      string        // streamed a word at a time
	Delay     time.Duration // before the first word (Chat returns with it)
	WordDelay time.Duration // between words
	Err       error         // Chat fails with it, after Delay
	StreamErr error         // the stream fails with it after Text
	Stall     bool          // nothing ever comes (until the context ends)
	// Retries are failed attempts before this one, each retried after
	// its wait (reported to LLM.OnRetry): a rate limit the provider rides
	// out.
	Retries []time.Duration
}

// Chat implements provider.LLM.
func (l *LLM) Chat(ctx context.Context, messages []provider.Message) (provider.TextStream, error) {
	l.mu.Lock()
	l.calls = append(l.calls, append([]provider.Message(nil), messages...))
	n := len(l.calls)
	l.mu.Unlock()
	r := Reply{Text: "Hello there."}
	if l.Reply != nil {
		r = l.Reply(n)
	}
	if r.Stall {
		<-ctx.Done()
		return nil, context.Cause(ctx)
	}
	for i, wait := range r.Retries {
		if l.OnRetry != nil {
			l.OnRetry(i+1, provider.FromResponse(provider.StageLLM, 429, nil, []byte(QuotaBody("llm", "MaxConcurrentGatewayLLMRpm"))), wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
	if err := sleep(ctx, r.Delay); err != nil {
		return nil, err
	}
	if r.Err != nil {
		return nil, r.Err
	}
	return &textStream{ctx: ctx, words: strings.SplitAfter(r.Text, " "), delay: r.WordDelay, err: r.StreamErr}, nil
}

// Calls returns the conversations the LLM was sent, in order.
func (l *LLM) Calls() [][]provider.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([][]provider.Message(nil), l.calls...)
}

type textStream struct {
	ctx   context.Context
	words []string
	delay time.Duration
	i     int
	cur   string
	err   error
}

func (s *textStream) Next() bool {
	if s.i >= len(s.words) {
		return false
	}
	if s.i > 0 {
		if err := sleep(s.ctx, s.delay); err != nil {
			s.err, s.words = err, nil
			return false
		}
	}
	s.cur = s.words[s.i]
	s.i++
	return true
}

func (s *textStream) Current() string { return s.cur }
func (s *textStream) Err() error {
	if s.i < len(s.words) {
		return nil
	}
	return s.err
}
func (s *textStream) Close() error { return nil }

// STT is a streaming recogniser whose answers are scripted per finalize.
type STT struct {
	// Answer says how the n-th finalize of the session (from 1, across
	// streams) is answered. Nil: "hello" at once.
	Answer func(n int) Finalize
	// Open, when set, decides the n-th Stream call (from 1): an error
	// refuses it.
	Open func(n int) error
	// CloseHangs, when set, makes Close wait until it is closed: a
	// provider that does not let go.
	CloseHangs chan struct{}
	// CloseDelay makes Close take that long: a server slow to answer the
	// close of its socket.
	CloseDelay time.Duration

	mu        sync.Mutex
	opened    int
	finalizes int
	written   int
	current   *sttStream
}

// Finalize is how one finalize is answered.
type Finalize struct {
	Text  string        // the final transcript; "" sends none
	Delay time.Duration // before the answer
	Never bool          // no answer at all
	Err   error         // the stream fails with it instead
}

// Stream implements provider.STT.
func (s *STT) Stream(ctx context.Context) (provider.STTStream, error) {
	s.mu.Lock()
	s.opened++
	n := s.opened
	s.mu.Unlock()
	if s.Open != nil {
		if err := s.Open(n); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	st := &sttStream{stt: s, ctx: ctx, cancel: cancel, events: make(chan sttResult, 64)}
	s.mu.Lock()
	s.current = st
	s.mu.Unlock()
	return st, nil
}

// Opened is how many streams were asked for.
func (s *STT) Opened() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opened
}

// Written is how many samples reached STT.
func (s *STT) Written() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.written
}

// Fail makes the open stream fail with err (its next Recv returns it), as
// a dropped connection does.
func (s *STT) Fail(err error) {
	s.mu.Lock()
	st := s.current
	s.mu.Unlock()
	if st != nil {
		st.send(sttResult{err: err})
	}
}

type sttResult struct {
	ev  provider.STTEvent
	err error
}

type sttStream struct {
	stt    *STT
	ctx    context.Context
	cancel context.CancelFunc
	events chan sttResult
	wg     sync.WaitGroup
}

func (st *sttStream) send(r sttResult) {
	select {
	case st.events <- r:
	case <-st.ctx.Done():
	}
}

func (st *sttStream) Write(samples []int16) error {
	if st.ctx.Err() != nil {
		return errors.New("stt: stream closed")
	}
	st.stt.mu.Lock()
	st.stt.written += len(samples)
	st.stt.mu.Unlock()
	return nil
}

func (st *sttStream) Finalize() error {
	if st.ctx.Err() != nil {
		return errors.New("stt: stream closed")
	}
	st.stt.mu.Lock()
	st.stt.finalizes++
	n := st.stt.finalizes
	st.stt.mu.Unlock()
	a := Finalize{Text: "hello"}
	if st.stt.Answer != nil {
		a = st.stt.Answer(n)
	}
	if a.Never {
		return nil
	}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		if sleep(st.ctx, a.Delay) != nil {
			return
		}
		if a.Err != nil {
			st.send(sttResult{err: a.Err})
			return
		}
		if a.Text != "" {
			st.send(sttResult{ev: provider.STTEvent{Type: provider.FinalTranscript, Text: a.Text}})
		}
		st.send(sttResult{ev: provider.STTEvent{Type: provider.Finalized}})
	}()
	return nil
}

func (st *sttStream) Recv() (provider.STTEvent, error) {
	select {
	case r := <-st.events:
		return r.ev, r.err
	case <-st.ctx.Done():
		return provider.STTEvent{}, io.EOF
	}
}

func (st *sttStream) Close() error {
	st.cancel()
	st.wg.Wait()
	if st.stt.CloseHangs != nil {
		<-st.stt.CloseHangs
	}
	time.Sleep(st.stt.CloseDelay)
	return nil
}

// TTS speaks each sentence as a tone, as scripted per utterance.
type TTS struct {
	Rate int // of its audio; 0: 16000
	// Speak says how the n-th utterance (from 1) goes. Nil: at once.
	Speak func(n int) Speech

	mu         sync.Mutex
	utterances int
	texts      []string
}

// Speech is how one utterance goes.
type Speech struct {
	PerSentence time.Duration // audio per sentence (0: 300 ms)
	Delay       time.Duration // before its first audio
	Err         error         // Synthesize fails with it
	RecvErr     error         // Recv fails with it after FailAfter pieces of audio
	FailAfter   int
	Stall       bool // no audio ever comes
	StallAfter  int  // no audio comes after this many pieces (0: none)
}

func (t *TTS) SampleRate() int {
	if t.Rate == 0 {
		return audio.PipelineRate
	}
	return t.Rate
}

func (t *TTS) Close() error { return nil }

// Texts returns every sentence pushed, in order.
func (t *TTS) Texts() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.texts...)
}

// Synthesize implements provider.TTS.
func (t *TTS) Synthesize(ctx context.Context) (provider.Utterance, error) {
	t.mu.Lock()
	t.utterances++
	n := t.utterances
	t.mu.Unlock()
	sp := Speech{}
	if t.Speak != nil {
		sp = t.Speak(n)
	}
	if sp.Err != nil {
		return nil, sp.Err
	}
	if sp.PerSentence == 0 {
		sp.PerSentence = 300 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(ctx)
	return &utterance{t: t, sp: sp, ctx: ctx, cancel: cancel, texts: make(chan string, 64)}, nil
}

type utterance struct {
	t      *TTS
	sp     Speech
	ctx    context.Context
	cancel context.CancelFunc
	texts  chan string
	once   sync.Once
	pieces int
	buf    []int16 // audio of the sentence being spoken
	first  bool
}

func (u *utterance) Push(text string) error {
	u.t.mu.Lock()
	u.t.texts = append(u.t.texts, text)
	u.t.mu.Unlock()
	select {
	case u.texts <- text:
		return nil
	case <-u.ctx.Done():
		return context.Cause(u.ctx)
	}
}

func (u *utterance) Flush() error {
	u.once.Do(func() { close(u.texts) })
	return nil
}

// Recv returns 20 ms pieces of a tone, paced at real time.
func (u *utterance) Recv() ([]int16, error) {
	if u.sp.Stall {
		<-u.ctx.Done()
		return nil, context.Cause(u.ctx)
	}
	if !u.first {
		u.first = true
		if err := sleep(u.ctx, u.sp.Delay); err != nil {
			return nil, err
		}
	}
	for len(u.buf) == 0 {
		select {
		case _, ok := <-u.texts:
			if !ok {
				return nil, io.EOF
			}
			u.buf = Tone(u.t.SampleRate(), u.sp.PerSentence, -20)
		case <-u.ctx.Done():
			return nil, context.Cause(u.ctx)
		}
	}
	if u.sp.RecvErr != nil && u.pieces >= u.sp.FailAfter {
		return nil, u.sp.RecvErr
	}
	if u.sp.StallAfter > 0 && u.pieces >= u.sp.StallAfter {
		<-u.ctx.Done()
		return nil, context.Cause(u.ctx)
	}
	piece := u.t.SampleRate() / 50
	out := u.buf[:min(piece, len(u.buf))]
	u.buf = u.buf[len(out):]
	u.pieces++
	return out, nil
}

func (u *utterance) Close() error {
	u.cancel()
	return nil
}

// Mic is a microphone that plays a script of voice and silence, paced in
// real time, then ends (io.EOF), or stays silent until its context ends
// when Hold is set.
type Mic struct {
	Script []Segment
	Hold   bool
	// Fail, when set, is what Read returns once the script has played (a
	// device that stopped), instead of ending or holding.
	Fail error

	mu  sync.Mutex
	pcm []int16 // what is left to deliver
	set bool
}

// Segment is a stretch of the microphone's script.
type Segment struct {
	Voice bool
	For   time.Duration
	Level float64 // dBFS, of the voice (default -20) or of the room's noise in a silence (default -75)
}

// Voice and Silence are script segments.
func Voice(d time.Duration) Segment   { return Segment{Voice: true, For: d} }
func Silence(d time.Duration) Segment { return Segment{For: d} }

func (m *Mic) Format() audio.Format { return audio.Pipeline }
func (m *Mic) Close() error         { return nil }

// Read delivers 20 ms at a time, one every 20 ms.
func (m *Mic) Read(ctx context.Context, p []int16) (int, error) {
	m.mu.Lock()
	if !m.set {
		m.set = true
		for _, s := range m.Script {
			if s.Voice {
				level := s.Level
				if level == 0 {
					level = -20
				}
				m.pcm = append(m.pcm, Tone(audio.PipelineRate, s.For, level)...)
			} else {
				level := s.Level
				if level == 0 {
					level = -75
				}
				m.pcm = append(m.pcm, Tone(audio.PipelineRate, s.For, level)...)
			}
		}
	}
	if len(m.pcm) == 0 {
		m.mu.Unlock()
		if m.Fail != nil {
			return 0, m.Fail
		}
		if m.Hold {
			if err := sleep(ctx, 20*time.Millisecond); err != nil {
				return 0, err
			}
			clear(p[:min(len(p), audio.PipelineRate/50)])
			return min(len(p), audio.PipelineRate/50), nil
		}
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), audio.PipelineRate/50)], m.pcm)
	m.pcm = m.pcm[n:]
	m.mu.Unlock()
	if err := sleep(ctx, time.Duration(n)*time.Second/audio.PipelineRate); err != nil {
		return 0, err
	}
	return n, nil
}

// Tone is d of a 220 Hz tone with a few harmonics at about level dBFS
// (voice for an energy detector when loud, room noise when quiet).
func Tone(rate int, d time.Duration, level float64) []int16 {
	n := int(d.Seconds() * float64(rate))
	out := make([]int16, n)
	amp := math.Pow(10, level/20) * 32767 * math.Sqrt2 / 1.5
	for i := range out {
		x := 2 * math.Pi * 220 * float64(i) / float64(rate)
		out[i] = int16(amp * (math.Sin(x) + 0.3*math.Sin(2*x) + 0.2*math.Sin(3*x)))
	}
	return out
}

// sleep waits d, or returns ctx's cause.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// DyingSpeaker works until At, then fails as a speaker whose device is
// gone: Write returns an output *audio.DeviceError, and so does Err (what
// a conversation polls between replies).
type DyingSpeaker struct {
	audio.Sink
	At time.Time
}

// Err reports the failure once At has passed.
func (d *DyingSpeaker) Err() error {
	if time.Now().Before(d.At) {
		return nil
	}
	return &audio.DeviceError{Direction: "output", Device: "test speaker", Op: "play", Err: errors.New("device gone")}
}

// Write plays until At.
func (d *DyingSpeaker) Write(ctx context.Context, p []int16) (int, error) {
	if err := d.Err(); err != nil {
		return 0, err
	}
	return d.Sink.Write(ctx, p)
}
