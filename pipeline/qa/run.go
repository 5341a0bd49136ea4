package qa

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/session"
)

// Options configure Run.
type Options struct {
	Out  string   // the report's directory (made, 0700)
	Only []string // class names; none: all
	// Gateway, when set, is a LiveKit-Inference-compatible gateway with
	// the embedded gateway's control endpoint (a `voicetui gateway`):
	// its base URL (".../v1"), the control token, and the credentials its
	// tokens are checked with. The classes then run one after another
	// (they share its rules); without it each has an embedded gateway of
	// its own and they run side by side.
	Gateway         string
	ControlToken    string
	Key, Secret     string
	AllowInsecureHT bool // credentials over plain http to another machine
	// Status renders the status pane after events, as plain text (the
	// interface's; QA lives below it).
	Status func(events []conversation.Event) string
	// Progress hears each class as it finishes (from several goroutines).
	Progress func(r Result)
}

// parallel is how many classes run at once, each with its embedded
// gateway (a shared --gateway runs them one after another).
const parallel = 4

// Result is one class's outcome.
type Result struct {
	Class    Class
	Pass     bool
	Problems []string // why not, in words
	// Heard is the clip found in the speaker's timeline ("" none);
	// Signal the time from the error event that caused it to its first
	// sound written to the speaker (-1 when there is none).
	Heard  string
	Signal time.Duration
	Status string // the status pane at the failure (or at the end)
	Took   time.Duration
}

// Select returns the classes named (all for none), or an error naming an
// unknown one and the known ones.
func Select(only []string) ([]Class, error) {
	if len(only) == 0 {
		return Classes, nil
	}
	var out []Class
	for _, name := range only {
		i := slices.IndexFunc(Classes, func(c Class) bool { return c.Name == name })
		if i < 0 {
			var names []string
			for _, c := range Classes {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("no QA class %q; the classes: %s", name, strings.Join(names, ", "))
		}
		out = append(out, Classes[i])
	}
	return out, nil
}

// Run runs the classes and returns their results in order. The report is
// written by WriteReport.
func Run(ctx context.Context, o Options) ([]Result, error) {
	classes, err := Select(o.Only)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o700); err != nil {
		return nil, err
	}
	question := filepath.Join(o.Out, "question.wav")
	if err := writeQuestion(ctx, question); err != nil {
		return nil, err
	}
	at := parallel
	if o.Gateway != "" {
		at = 1
	}
	results := make([]Result, len(classes))
	sem := make(chan struct{}, at)
	var wg sync.WaitGroup
	for i, c := range classes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = runClass(ctx, o, c, question)
			if o.Progress != nil {
				o.Progress(results[i])
			}
		}()
	}
	wg.Wait()
	return results, ctx.Err()
}

// The user's turn: a question, then the silence a person leaves while
// waiting for the answer.
const questionText = "What time is it?"

func writeQuestion(ctx context.Context, path string) error {
	e, err := localgw.NewEspeak()
	if err != nil {
		return fmt.Errorf("qa: the spoken question needs espeak-ng: %w", err)
	}
	pcm, err := e.SpeakAt(ctx, questionText, "en-us", audio.PipelineRate)
	if err != nil {
		return fmt.Errorf("qa: speak the question: %w", err)
	}
	w, err := audio.CreateWAV(path, audio.Pipeline)
	if err != nil {
		return err
	}
	lead, tail := make([]int16, audio.PipelineRate/2), make([]int16, audio.PipelineRate*3/2)
	for _, p := range [][]int16{lead, pcm, tail} {
		if err := w.WriteSamples(p); err != nil {
			w.Close()
			return err
		}
	}
	return w.Close()
}

// classTimeout bounds a class: the slowest waits 10 s for a watchdog.
const classTimeout = 60 * time.Second

func runClass(ctx context.Context, o Options, c Class, question string) Result {
	start := time.Now()
	res := Result{Class: c, Signal: -1}
	run, err := runSession(ctx, o, c, question)
	res.Took = time.Since(start)
	if err != nil {
		res.Problems = []string{"could not run: " + err.Error()}
		return res
	}
	judge(&res, run, o.Status)
	return res
}

// sessionRun is what one class's session left.
type sessionRun struct {
	events  []conversation.Event
	speaker []int16 // the timeline, 16 kHz
	written []int16 // everything written to the speaker, in order
	writes  []stamp
	err     error // what Run returned
	// problems are the run's own failures (its files, the gateway's
	// reset): the class fails with them.
	problems []string
}

func runSession(ctx context.Context, o Options, c Class, question string) (_ *sessionRun, err error) {
	dir := filepath.Join(o.Out, c.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	evFile, err := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer evFile.Close()
	enc := json.NewEncoder(evFile)
	run := &sessionRun{}
	var mu sync.Mutex
	var writeErr error // the first failure to keep an event: the report says it
	events := conversation.NewEmitter(func(e conversation.Event) {
		mu.Lock()
		defer mu.Unlock()
		run.events = append(run.events, e)
		if err := enc.Encode(e); err != nil && writeErr == nil {
			writeErr = fmt.Errorf("events.jsonl: %w", err)
		}
	})
	eventsStart := time.Now()
	attempts := session.NewAttempts(events)
	b, control, err := openBackend(o, c, attempts.OnRetry)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if o.Gateway != "" { // a shared gateway may hold rules; an embedded one is new
		if err := control("/reset"); err != nil {
			return nil, fmt.Errorf("control endpoint: %w", err)
		}
		// It is left as found, or the report says it is not: with the
		// class's problems, or with the error that ended the run early.
		defer func() {
			if rerr := control("/reset"); rerr != nil {
				msg := "the gateway's rules could not be reset afterwards: " + rerr.Error()
				if err != nil {
					err = fmt.Errorf("%w; %s", err, msg)
				} else {
					run.problems = append(run.problems, msg)
				}
			}
		}()
	}
	for _, r := range c.Quota {
		if err := control("/quota?rule=" + url.QueryEscape(r)); err != nil {
			return nil, fmt.Errorf("quota rule %s: %w", r, err)
		}
	}
	for _, r := range c.Fault {
		if err := control("/fault?rule=" + url.QueryEscape(r)); err != nil {
			return nil, fmt.Errorf("fault rule %s: %w", r, err)
		}
	}
	src, err := audio.NewWAVSource(question, &audio.WAVSourceOptions{Realtime: true})
	if err != nil {
		return nil, err
	}
	defer src.Close()
	wav, err := audio.CreateWAV(filepath.Join(dir, "speaker.wav"), audio.Pipeline)
	if err != nil {
		return nil, err
	}
	var recMu sync.Mutex
	spk, err := audio.NewClockSink(audio.Pipeline, func(p []int16) error {
		recMu.Lock()
		run.speaker = append(run.speaker, p...)
		recMu.Unlock()
		return wav.WriteSamples(p)
	})
	if err != nil {
		wav.Close()
		return nil, err
	}
	stamped := &stampSink{Sink: spk, zero: eventsStart}
	sess, err := session.New(session.Options{LLM: b.LLM, STT: b.STT, TTS: b.TTS, Mic: src, Speaker: stamped,
		Events: events, Attempts: attempts})
	if err != nil {
		spk.Close()
		wav.Close()
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, classTimeout)
	defer cancel()
	run.err = sess.Run(sctx)
	sess.Wait()
	spk.Close() // the clock stops: the timeline is complete
	if err := wav.Close(); err != nil {
		return nil, err
	}
	if o.Status != nil {
		mu.Lock()
		evs := slices.Clone(run.events)
		mu.Unlock()
		if err := os.WriteFile(filepath.Join(dir, "status.txt"), []byte(statusFile(evs, o.Status)), 0o600); err != nil {
			return nil, err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if writeErr != nil {
		run.problems = append(run.problems, writeErr.Error())
	}
	run.written, run.writes = stamped.written, stamped.stamps
	return run, nil
}

// stampSink notes when each write to the speaker happened (on the
// events' clock) and keeps what was written, in order: the time a clip's
// first sample went to the speaker is then known to the millisecond (the
// simulated speaker plays it within its next 20 ms period).
type stampSink struct {
	audio.Sink
	zero    time.Time
	mu      sync.Mutex
	written []int16
	stamps  []stamp
}

type stamp struct {
	at    time.Duration // since the events' zero
	first int           // index in written of the write's first sample
}

func (s *stampSink) Write(ctx context.Context, p []int16) (int, error) {
	s.mu.Lock()
	s.stamps = append(s.stamps, stamp{at: time.Since(s.zero), first: len(s.written)})
	s.written = append(s.written, p...)
	s.mu.Unlock()
	return s.Sink.Write(ctx, p)
}

// writtenAt is when sample i of what was written went to the speaker.
func writtenAt(stamps []stamp, i int) time.Duration {
	at := time.Duration(-1)
	for _, st := range stamps {
		if st.first > i {
			break
		}
		at = st.at
	}
	return at
}

// openBackend builds the clients for a class and a function that posts
// to the gateway's control endpoint (path under /control).
func openBackend(o Options, c Class, onRetry func(int, error, time.Duration)) (*backend.Backend, func(string) error, error) {
	retry := provider.Retry{OnRetry: onRetry}
	if o.Gateway == "" {
		local := localgw.Options{STTScript: []string{"what time is it", "what time is it", "what time is it"}}
		opts := backend.Options{Kind: backend.Embedded, Local: local, Retry: retry}
		if c.WrongSecret {
			opts.ClientSecret = "not-the-gateway-secret"
		}
		b, err := backend.Open(opts, func(string) string { return "" })
		if err != nil {
			return nil, nil, err
		}
		base, token := b.Gateway.ControlURL(), b.Gateway.ControlToken()
		return b, func(path string) error { return localgw.Control(base+path, token) }, nil
	}
	key, secret := o.Key, o.Secret
	if c.WrongSecret {
		secret = "not-" + secret
	}
	env := map[string]string{"LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret}
	b, err := backend.Open(backend.Options{Kind: backend.LiveKit, GatewayURL: o.Gateway, Retry: retry,
		AllowInsecureHTTP: o.AllowInsecureHT}, func(k string) string { return env[k] })
	if err != nil {
		return nil, nil, err
	}
	base, err := ControlURL(o.Gateway)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return b, func(path string) error { return localgw.Control(base+path, o.ControlToken) }, nil
}

// ControlURL is the control endpoint of the gateway at base (".../v1").
func ControlURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("--gateway %q: want the gateway's base URL, e.g. http://127.0.0.1:7890/v1", base)
	}
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/"), "/v1") + "/control"
	u.RawQuery = ""
	return u.String(), nil
}

// statusFile is the status pane at the failure and at the end.
func statusFile(events []conversation.Event, render func([]conversation.Event) string) string {
	at := failureIndex(events)
	var b strings.Builder
	if at >= 0 {
		fmt.Fprintf(&b, "At the failure (%d ms):\n%s\n\n", events[at].T.Milliseconds(), render(events[:at+1]))
	}
	end := time.Duration(0)
	if len(events) > 0 {
		end = events[len(events)-1].T
	}
	fmt.Fprintf(&b, "At the end (%d ms):\n%s\n", end.Milliseconds(), render(events))
	return b.String()
}

// failureIndex is the error event the signal answers: the one before the
// first fallback event, else the last error; -1 when there is none.
func failureIndex(events []conversation.Event) int {
	last := -1
	for i, e := range events {
		switch e.Payload.(type) {
		case conversation.Error:
			last = i
		case conversation.Fallback:
			if last >= 0 {
				return last
			}
		}
	}
	return last
}
