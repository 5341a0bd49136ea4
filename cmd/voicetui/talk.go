package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/device"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/pipeline/session"
	"github.com/voicetui/voicetui/ui"
)

// talk holds a spoken conversation: devices (or --input/--output files),
// the backend, and the session; events go to stdout as JSON lines
// (--headless) or as plain lines for people.
func talk(ctx context.Context, c config, stdout, stderr io.Writer) error {
	var closers []func() error
	defer func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}()

	if c.logFile != "" {
		f, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return configError{fmt.Errorf("--log-file: %w", err)}
		}
		closers = append(closers, f.Close)
		c.provider.Local.Log = slog.New(slog.NewTextHandler(f, nil))
	}

	// A recording that fails is said once, as an error event (from its own
	// goroutine: it may be the event log itself that failed, mid-write).
	var events *session.Emitter
	var recordOnce sync.Once
	recordFailed := func(err error) {
		recordOnce.Do(func() {
			go events.Emit(session.Error{Message: safetext.Sanitize("--record stopped: "+err.Error(), 300)})
		})
	}

	// Events: written as they come; --record keeps a copy. On a terminal,
	// the interface shows them and nothing else may write to it.
	var mu sync.Mutex
	var outputs []func(session.Event)
	var prog *tea.Program
	if c.tui {
		outputs = append(outputs, func(e session.Event) { prog.Send(ui.EventMsg(e)) })
	} else if c.headless {
		enc := json.NewEncoder(stdout)
		outputs = append(outputs, func(e session.Event) { enc.Encode(e) })
	} else {
		outputs = append(outputs, func(e session.Event) { printEvent(stdout, e) })
	}
	if c.record != "" {
		if err := os.MkdirAll(c.record, 0o755); err != nil {
			return configError{fmt.Errorf("--record: %w", err)}
		}
		f, err := os.Create(filepath.Join(c.record, "events.jsonl"))
		if err != nil {
			return configError{fmt.Errorf("--record: %w", err)}
		}
		closers = append(closers, f.Close)
		enc := json.NewEncoder(f)
		outputs = append(outputs, func(e session.Event) {
			if err := enc.Encode(e); err != nil {
				recordFailed(fmt.Errorf("events.jsonl: %w", err))
			}
		})
	}
	events = session.NewEmitter(func(e session.Event) {
		mu.Lock()
		defer mu.Unlock()
		for _, out := range outputs {
			out(e)
		}
	})

	mic, spk, err := openAudio(c, &closers, recordFailed)
	if err != nil {
		return err
	}

	var sess *session.Session
	opts := c.provider
	opts.Retry.OnRetry = func(n int, err error, wait time.Duration) {
		if sess != nil {
			sess.OnRetry(n, err, wait)
		}
	}
	b, err := backend.Open(opts, os.Getenv)
	if err != nil {
		return configError{err}
	}
	closers = append(closers, b.Close)
	if !c.headless && !c.tui {
		fmt.Fprintf(stderr, "voicetui: talking to %s; Ctrl+C ends\n", b.Description)
	}
	so := c.session
	so.LLM, so.STT, so.TTS = b.LLM, b.STT, b.TTS
	so.Mic, so.Speaker, so.Events = mic, spk, events
	if !c.tui {
		sess, err = session.New(so)
		if err != nil {
			return err
		}
		return sess.Run(ctx)
	}

	// The interface. The session's level hooks only store the latest
	// values; a pump sends them at most 20 times a second, and only when
	// the meters would change, so neither side waits for the other.
	var lv sync.Mutex
	var inLv audio.Levels
	outLv := audio.Silence
	so.OutputLevel = func(db float64) { lv.Lock(); outLv = max(outLv, db); lv.Unlock() }
	so.InputLevel = func(in audio.Levels) {
		lv.Lock()
		inLv = audio.Levels{RMS: in.RMS, Peak: in.Peak, Bands: slices.Clone(in.Bands)}
		lv.Unlock()
	}
	pumpDone := make(chan struct{})
	pumpStop := make(chan struct{})
	go func() {
		defer close(pumpDone)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		sentIn, sentOut := audio.Silence, audio.Silence
		for {
			select {
			case <-pumpStop:
				return
			case <-t.C:
			}
			lv.Lock()
			in, out := inLv, outLv
			outLv = max(outLv-6, audio.Silence) // falls back when nothing plays
			lv.Unlock()
			if math.Abs(in.RMS-sentIn) < 0.5 && math.Abs(out-sentOut) < 0.5 {
				continue
			}
			sentIn, sentOut = in.RMS, out
			prog.Send(ui.LevelMsg{In: in, Out: out})
		}
	}()
	defer func() { close(pumpStop); <-pumpDone }()
	sess, err = session.New(so)
	if err != nil {
		return err
	}
	ctl := ui.Controller{SetMuted: sess.SetMuted, Say: sess.Say, Replay: sess.ReplayFallback}
	if b.Gateway != nil {
		base := b.Gateway.ControlURL()
		ctl.Quota = func(rule string) error { return control(base + "/quota?rule=" + url.QueryEscape(rule)) }
		ctl.Reset = func() error { return control(base + "/reset") }
	}
	// One way out: q, ctrl+c (raw mode makes it a key) or a signal on ctx
	// all end the program, then the session, then the replays.
	prog = tea.NewProgram(ui.New(ui.Info{Backend: kindName(b.Kind), Detail: b.Description}, ctl, nil),
		tea.WithAltScreen(), tea.WithOutput(stdout), tea.WithoutSignalHandler())
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() {
		err := sess.Run(sctx)
		prog.Send(ui.ClosedMsg{Err: err})
		done <- err
	}()
	go func() {
		select {
		case <-ctx.Done():
			prog.Quit()
		case <-sctx.Done():
		}
	}()
	_, perr := prog.Run()
	stop()
	err = <-done
	sess.Wait()
	if perr != nil {
		return perr
	}
	return err
}

// control posts to the embedded gateway's control endpoint.
func control(u string) error {
	resp, err := http.Post(u, "", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 500))
		return fmt.Errorf("%s: %s", resp.Status, safetext.Sanitize(string(b), 200))
	}
	return nil
}

func kindName(k backend.Kind) string {
	switch k {
	case backend.Embedded:
		return "embedded gateway"
	case backend.LiveKit:
		return "LiveKit Inference"
	case backend.OpenAI:
		return "OpenAI-compatible"
	}
	return string(k)
}

// openAudio opens the microphone (or --input) and the speaker (or
// --output), with --record taps.
func openAudio(c config, closers *[]func() error, recordFailed func(error)) (audio.Source, audio.Sink, error) {
	var mic audio.Source
	var spk audio.Sink
	switch {
	case c.input == "" && c.output == "":
		m, s, err := openDevices(c)
		if err != nil {
			return nil, nil, err
		}
		*closers = append(*closers, m.Close, s.Close)
		mic, spk = m, s
	case c.input == "":
		m, err := device.OpenCapture(&device.CaptureOptions{Device: c.inputDevice})
		if err != nil {
			return nil, nil, err
		}
		*closers = append(*closers, m.Close)
		mic = m
	case c.output == "":
		s, err := openSpeaker(c)
		if err != nil {
			return nil, nil, err
		}
		*closers = append(*closers, s.Close)
		spk = s
	}
	if c.input != "" {
		src, err := audio.NewWAVSource(c.input, &audio.WAVSourceOptions{Realtime: true})
		if err != nil {
			return nil, nil, configError{err}
		}
		*closers = append(*closers, src.Close)
		if mic, err = audio.Resampled(src, audio.PipelineRate); err != nil {
			return nil, nil, configError{fmt.Errorf("--input %s: %w", c.input, err)}
		}
	}
	if c.output != "" {
		s, err := clockSinkToWAV(c.output, closers)
		if err != nil {
			return nil, nil, err
		}
		spk = s
	}
	if c.record != "" {
		rec, err := clockSinkToWAV(filepath.Join(c.record, "speaker.wav"), closers)
		if err != nil {
			return nil, nil, err
		}
		ts := &teeSink{Sink: spk, rec: rec, failed: recordFailed}
		if rate := spk.Format().SampleRate; rate != outputRate {
			ts.rs, _ = audio.NewResampler(rate, outputRate)
		}
		spk = ts
		w, err := audio.CreateWAV(filepath.Join(c.record, "mic.wav"), audio.Pipeline)
		if err != nil {
			return nil, nil, configError{err}
		}
		*closers = append(*closers, w.Close)
		mic = teeSource{mic, w, recordFailed}
	}
	return mic, spk, nil
}

// outputRate is the rate of --output and of recordings of the speaker.
const outputRate = audio.PipelineRate

// clockSinkToWAV is a speaker on a real-time clock recording to path.
func clockSinkToWAV(path string, closers *[]func() error) (*audio.ClockSink, error) {
	f := audio.Format{SampleRate: outputRate, Channels: 1}
	w, err := audio.CreateWAV(path, f)
	if err != nil {
		return nil, configError{err}
	}
	s, err := audio.NewClockSink(f, w.WriteSamples)
	if err != nil {
		w.Close()
		return nil, err
	}
	*closers = append(*closers, w.Close, s.Close) // closed in reverse: the clock stops first
	return s, nil
}

// teeSink plays to the speaker and to a recording of it (on its own
// clock, so the recording keeps the timeline).
type teeSink struct {
	audio.Sink
	rec    *audio.ClockSink
	mu     sync.Mutex       // a replayed clip may write beside a reply
	rs     *audio.Resampler // speaker rate -> outputRate, when they differ
	buf    []int16
	failed func(error)
}

func (t *teeSink) Write(ctx context.Context, p []int16) (int, error) {
	n, err := t.Sink.Write(ctx, p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > 0 {
		pcm := p[:n]
		if t.rs != nil {
			t.buf = t.rs.Process(t.buf[:0], pcm)
			pcm = t.buf
		}
		if _, rerr := t.rec.Write(ctx, pcm); rerr != nil && ctx.Err() == nil {
			t.failed(fmt.Errorf("speaker.wav: %w", rerr))
		}
	}
	return n, err
}

func (t *teeSink) Flush() { t.Sink.Flush(); t.rec.Flush() }

// teeSource records the microphone.
type teeSource struct {
	audio.Source
	w      *audio.WAVWriter
	failed func(error)
}

func (t teeSource) Read(ctx context.Context, p []int16) (int, error) {
	n, err := t.Source.Read(ctx, p)
	if n > 0 {
		if werr := t.w.WriteSamples(p[:n]); werr != nil {
			t.failed(fmt.Errorf("mic.wav: %w", werr))
		}
	}
	return n, err
}

// printEvent shows an event to a person (until the terminal UI lands).
func printEvent(w io.Writer, e session.Event) {
	switch p := e.Payload.(type) {
	case session.Transcript:
		if p.Final {
			fmt.Fprintf(w, "you:   %s\n", safetext.Inert(p.Text))
		}
	case session.AgentText:
		if p.Final && p.Text != "" {
			fmt.Fprintf(w, "agent: %s\n", safetext.Inert(p.Text))
		}
	case session.Error:
		fmt.Fprintf(w, "error: %s\n", p.Message)
		if p.Quota != nil && p.Quota.Hint != "" {
			fmt.Fprintf(w, "hint:  %s\n", p.Quota.Hint)
		}
	case session.Fallback:
		what := p.Clip + " clip"
		if p.Text != "" {
			what = fmt.Sprintf("%q", p.Text)
		}
		fmt.Fprintf(w, "fallback: %s (%s), played: %v\n", what, p.Reason, p.OK)
	case session.Close:
		fmt.Fprintf(w, "session closed: %s\n", p.Reason)
	}
}
