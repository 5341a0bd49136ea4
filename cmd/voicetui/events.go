package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/ui"
)

// eventQueue is how many events may wait for a slow consumer before they
// are dropped (and counted): about a minute of a busy conversation.
const eventQueue = 1024

// eventOutputs takes a conversation's events where the user asked: to the
// interface (on a terminal), as JSON lines (--headless) or as plain lines
// for people; and a copy into --record's events.jsonl.
type eventOutputs struct {
	events *conversation.Emitter

	mu      sync.Mutex // one event at a time through every output
	outputs []func(conversation.Event)
	program *tea.Program // the interface, once it exists
	failed  sync.Once
	log     slog.Handler // --log-file, nil without it
}

// openEvents builds the outputs c asks for; closers gets the files to
// close.
func openEvents(c config, stdout io.Writer, closers *closers) (*eventOutputs, error) {
	o := &eventOutputs{}
	switch {
	case c.tui:
		o.outputs = append(o.outputs, func(e conversation.Event) {
			if o.program != nil {
				o.program.Send(ui.EventMsg(e))
			}
		})
	case c.headless:
		enc := json.NewEncoder(stdout)
		o.outputs = append(o.outputs, func(e conversation.Event) { enc.Encode(e) })
	default:
		o.outputs = append(o.outputs, func(e conversation.Event) { printEvent(stdout, e) })
	}
	if c.record != "" {
		if err := os.MkdirAll(c.record, 0o700); err != nil {
			return nil, configError{fmt.Errorf("--record: %w", err)}
		}
		f, err := createPrivate(filepath.Join(c.record, "events.jsonl"), os.O_TRUNC)
		if err != nil {
			return nil, configError{fmt.Errorf("--record: %w", err)}
		}
		closers.add(f.Close)
		enc := json.NewEncoder(f)
		o.outputs = append(o.outputs, func(e conversation.Event) {
			if err := enc.Encode(e); err != nil {
				o.recordFailed(fmt.Errorf("events.jsonl: %w", err))
			}
		})
	}
	// Queued: a reader of stdout that stalls must not stall the session
	// (its loop emits), so events wait here, up to eventQueue of them.
	o.events = conversation.NewQueuedEmitter(func(e conversation.Event) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, out := range o.outputs {
			out(e)
		}
	}, eventQueue)
	closers.add(func() error { o.events.Close(2 * time.Second); return nil }) // before the files close
	return o, nil
}

// attach sends the events to the interface from now on.
func (o *eventOutputs) attach(p *tea.Program) {
	o.mu.Lock()
	o.program = p
	o.mu.Unlock()
}

// recordFailed says once, as an error event, that --record stopped (from
// its own goroutine: it may be the event log itself that failed,
// mid-write).
func (o *eventOutputs) recordFailed(err error) {
	o.failed.Do(func() {
		go o.events.Emit(conversation.Error{Message: safetext.Sanitize("--record stopped: "+err.Error(), 300)})
	})
}

// echoFailed says that echo cancellation stopped: the microphone goes on
// with the agent's echo in it, and the user should know why the agent may
// now interrupt itself.
func (o *eventOutputs) echoFailed(err error) {
	o.events.Emit(conversation.Error{Stage: "device", Attempt: 1,
		Message: safetext.Sanitize("echo cancellation stopped: "+err.Error(), 300),
		Hint:    "the voice threshold is raised again while the agent speaks; headphones let you talk over it"})
}

// printEvent shows an event to a person, one plain line (stdout is not a
// terminal, and not --headless).
func printEvent(w io.Writer, e conversation.Event) {
	switch p := e.Payload.(type) {
	case conversation.Transcript:
		if p.Final {
			fmt.Fprintf(w, "you:   %s\n", safetext.Inert(p.Text))
		}
	case conversation.AgentText:
		if p.Final && p.Text != "" {
			fmt.Fprintf(w, "agent: %s\n", safetext.Inert(p.Text))
		}
	case conversation.Error:
		fmt.Fprintf(w, "error: %s\n", p.Message)
		if p.Quota != nil && p.Quota.Hint != "" {
			fmt.Fprintf(w, "hint:  %s\n", p.Quota.Hint)
		}
	case conversation.Fallback:
		what := p.Clip + " clip"
		if p.Text != "" {
			what = fmt.Sprintf("%q", p.Text)
		}
		fmt.Fprintf(w, "fallback: %s (%s), played: %v\n", what, p.Reason, p.OK)
	case conversation.Tool:
		fmt.Fprintf(w, "tool:  %s\n", safetext.Sanitize(ui.ToolLine(p), 400))
	case conversation.Close:
		fmt.Fprintf(w, "session closed: %s\n", p.Reason)
	case conversation.Dropped:
		fmt.Fprintf(w, "(%d events not shown: this output fell behind)\n", p.Count)
	}
}

// closers are what a command opened, closed in reverse order.
type closers []func() error

func (c *closers) add(f ...func() error) { *c = append(*c, f...) }

func (c *closers) closeAll() {
	for i := len(*c) - 1; i >= 0; i-- {
		(*c)[i]()
	}
	*c = nil
}
