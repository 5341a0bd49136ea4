package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/session"
	"github.com/voicetui/voicetui/ui"
)

// The guided demo: a short conversation on the real speaker, then each
// quota kind in turn, each step in a session of its own against an
// embedded gateway, with a caption over the status pane and a key
// between steps. The user's lines are typed by the demo (the microphone
// is not used: a laptop's room is not part of the story); the agent's
// replies and the fallback recordings are heard.

type demoStep struct {
	caption string
	quota   []string // rules set before the step's session starts
	say     string   // the user's line ("": none, the failure comes first)
}

var demoSteps = []demoStep{
	{caption: "A normal exchange: you ask, the agent answers aloud.", say: "Hello there."},
	{caption: "A brief rate limit: the gateway refuses once, voicetui retries, and the answer still comes.",
		quota: []string{"llm:rate:count=1"}, say: "What time is it?"},
	{caption: "Now the LLM credits run out: the agent cannot think, so a recording says why and the hint shows.",
		quota: []string{"llm:credits"}, say: "What time is it?"},
	{caption: "Now the TTS credits run out: TTS cannot speak this, so a recording plays.",
		quota: []string{"tts:credits"}, say: "Can you help me?"},
	{caption: "Now the STT credits run out: the agent cannot hear you at all, and says so at once.",
		quota: []string{"stt:credits"}},
}

// errDemoQuit ends the demo early (q).
var errDemoQuit = fmt.Errorf("demo: quit")

func runDemo(ctx context.Context, c config, stdout, stderr io.Writer) error {
	var open closers
	defer open.closeAll()
	spk, err := demoSpeaker(c, &open)
	if err != nil {
		return err
	}
	keys := newKeyReader(os.Stdin)
	fmt.Fprintf(stdout, "voicetui demo: %d steps against an embedded gateway; the agent speaks on the speaker.\n", len(demoSteps))
	for i, st := range demoSteps {
		fmt.Fprintf(stdout, "\n[step %d/%d] %s\n", i+1, len(demoSteps), st.caption)
		events, err := demoStepRun(ctx, c, st, spk, stdout, stderr)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, captionedStatus(fmt.Sprintf("step %d/%d: %s", i+1, len(demoSteps), st.caption), events))
		if i == len(demoSteps)-1 {
			break
		}
		fmt.Fprint(stdout, "Press a key for the next step, q to quit. ")
		if err := keys.wait(ctx); err == errDemoQuit {
			fmt.Fprintln(stdout)
			return nil
		} else if err != nil {
			return err
		}
		fmt.Fprintln(stdout)
	}
	fmt.Fprintln(stdout, "\nThe demo is over: every failure was heard and shown. `voicetui qa` runs them all and writes a report.")
	return nil
}

// demoSpeaker opens the speaker (or --output) once for every step.
func demoSpeaker(c config, open *closers) (audio.Sink, error) {
	if c.output != "" {
		return clockSinkToWAV(c.output, open)
	}
	spk, err := openSpeaker(c)
	if err != nil {
		return nil, err
	}
	open.add(spk.Close)
	return spk, nil
}

// demoStepRun runs one step: a fresh embedded gateway with the step's
// rules, a session, the user's line once it listens, until the reply has
// played or the session has closed.
func demoStepRun(ctx context.Context, c config, st demoStep, spk audio.Sink, stdout, stderr io.Writer) ([]conversation.Event, error) {
	var mu sync.Mutex
	var events []conversation.Event
	stopping := false // the step is over: what follows is its teardown
	done := make(chan struct{}, 1)
	listening := make(chan struct{}, 1)
	emitter := conversation.NewEmitter(func(e conversation.Event) {
		mu.Lock()
		if !stopping {
			events = append(events, e)
		}
		mu.Unlock()
		if c, ok := e.Payload.(conversation.Close); ok && c.Reason == "user" {
			return // the demo ended the step, not the user
		}
		printEvent(stdout, e)
		switch p := e.Payload.(type) {
		case conversation.State:
			if p.Agent == "listening" {
				select {
				case listening <- struct{}{}:
				default:
				}
			}
		case conversation.Metrics, conversation.Close:
			select {
			case done <- struct{}{}:
			default:
			}
		}
	})
	attempts := session.NewAttempts(emitter)
	opts := c.provider
	opts.Kind = backend.Embedded
	opts.Local.STTScript = []string{"hello"}
	opts.Retry.OnRetry = attempts.OnRetry
	b, err := backend.Open(opts, func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	defer b.Close()
	base, token := b.Gateway.ControlURL(), b.Gateway.ControlToken()
	for _, r := range st.quota {
		if err := localgw.Control(base+"/quota?rule="+url.QueryEscape(r), token); err != nil {
			return nil, err
		}
	}
	so := c.session
	so.LLM, so.STT, so.TTS = b.LLM, b.STT, b.TTS
	so.Mic, so.Speaker, so.Events, so.Attempts = silentSource{}, spk, emitter, attempts
	sess, err := session.New(so)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- sess.Run(sctx) }()
	if st.say != "" {
		select {
		case <-listening:
			sess.Say(st.say)
		case <-done:
		case <-time.After(10 * time.Second):
			fmt.Fprintln(stderr, "voicetui demo: the agent was not listening within 10 s; the step goes on without your line")
		}
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(stderr, "voicetui demo: no reply and no close within 30 s; on to the next step")
	case <-ctx.Done():
	}
	// A reply has played, or the session closed (its recording played).
	mu.Lock()
	stopping = true
	mu.Unlock()
	cancel()
	<-ran
	sess.Wait()
	mu.Lock()
	defer mu.Unlock()
	return append([]conversation.Event(nil), events...), nil
}

// captionedStatus is the status pane with the step's caption over it: at
// the failure when the step went on to recover (a retry), else at its
// end.
func captionedStatus(caption string, events []conversation.Event) string {
	failed, closed := -1, false
	for i, e := range events {
		switch p := e.Payload.(type) {
		case conversation.Error:
			failed = i
		case conversation.Close:
			closed = p.Reason == "error"
		}
	}
	if failed >= 0 && !closed {
		return caption + "\n" + ui.StatusText(events[:failed+1], 76, false) + "\nthen the reply came:\n" + ui.StatusText(events, 76, false)
	}
	return caption + "\n" + ui.StatusText(events, 76, false)
}

// keyReader waits for one key: raw from a terminal (no Enter needed),
// else a line.
type keyReader struct {
	f   *os.File
	tty bool
}

func newKeyReader(f *os.File) *keyReader {
	return &keyReader{f: f, tty: term.IsTerminal(int(f.Fd()))}
}

// wait returns errDemoQuit for q, nil for any other key.
func (k *keyReader) wait(ctx context.Context) error {
	if k.tty {
		// Restored here, not by the reader: an interrupt returns while it
		// still waits for a key, and the terminal must not stay raw.
		if old, err := term.MakeRaw(int(k.f.Fd())); err == nil {
			defer term.Restore(int(k.f.Fd()), old)
		}
	}
	got := make(chan string, 1)
	go func() {
		if k.tty {
			b := make([]byte, 1)
			n, _ := k.f.Read(b)
			got <- string(b[:n])
			return
		}
		var line string
		fmt.Fscanln(k.f, &line)
		got <- line
	}()
	select {
	case s := <-got:
		if strings.HasPrefix(strings.ToLower(s), "q") || s == "\x03" {
			return errDemoQuit
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
