package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// A bug in the interface must not cost the user what was recorded.
// guarded wraps the interface's model: a panic in its Update, its View or
// a command it returned is caught there, and the program quits the normal
// way (the terminal restored, the conversation closed as by q, a clip
// that is owed still heard, --record's files and the events flushed by
// the caller). The panic and its stack go to a file the exit message
// names. Bubble Tea would catch it too, but print it over the restored
// terminal and nowhere else.
type guarded struct {
	m      tea.Model
	crash  *crash  // shared by every copy
	frames *frames // how long the frames took to draw
}

// frames counts the interface's frames and how long each took to draw:
// a frame over 16 ms is one a 60 Hz terminal would show late.
type frames struct {
	mu        sync.Mutex
	n, over16 int
	slowest   time.Duration
	total     time.Duration
}

func (f *frames) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	f.total += d
	f.slowest = max(f.slowest, d)
	if d > 16*time.Millisecond {
		f.over16++
	}
}

// log writes the figures to the log, if there is one.
func (f *frames) log(h slog.Handler) {
	if h == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	mean := time.Duration(0)
	if f.n > 0 {
		mean = f.total / time.Duration(f.n)
	}
	slog.New(h).Info("interface frames", "frames", f.n, "mean_ms", float64(mean.Microseconds())/1000,
		"slowest_ms", float64(f.slowest.Microseconds())/1000, "over_16ms", f.over16)
}

// crash is the first panic of the interface.
type crash struct {
	mu    sync.Mutex
	value any
	stack []byte
}

// errInterfaceCrashed is the error of a session whose interface crashed.
var errInterfaceCrashed = errors.New("the interface crashed")

func guard(m tea.Model) guarded { return guarded{m: m, crash: &crash{}, frames: &frames{}} }

func (c *crash) note(v any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.value == nil {
		c.value, c.stack = v, debug.Stack()
	}
}

// crashed is the panic's value, nil when none.
func (c *crash) crashed() any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.value
}

// crashMsg tells the program a command panicked.
type crashMsg struct{}

func (g guarded) Init() tea.Cmd { return g.cmd(g.m.Init()) }

func (g guarded) Update(msg tea.Msg) (next tea.Model, cmd tea.Cmd) {
	if _, ok := msg.(crashMsg); ok || g.crash.crashed() != nil {
		return g, tea.Quit
	}
	defer func() {
		if r := recover(); r != nil {
			g.crash.note(r)
			next, cmd = g, tea.Quit
		}
	}()
	m, c := g.m.Update(msg)
	g.m = m
	return g, g.cmd(c)
}

func (g guarded) View() (v string) {
	if g.crash.crashed() != nil {
		return "voicetui: the interface crashed: closing"
	}
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			g.crash.note(r)
			v = "voicetui: the interface crashed: closing"
		}
	}()
	v = g.m.View()
	g.frames.add(time.Since(start))
	return v
}

// cmd guards a command, and those of a batch it returns.
func (g guarded) cmd(c tea.Cmd) tea.Cmd {
	if c == nil {
		return nil
	}
	return func() (msg tea.Msg) {
		defer func() {
			if r := recover(); r != nil {
				g.crash.note(r)
				msg = crashMsg{}
			}
		}()
		msg = c()
		if b, ok := msg.(tea.BatchMsg); ok {
			guardedBatch := make(tea.BatchMsg, len(b))
			for i, c := range b {
				guardedBatch[i] = g.cmd(c)
			}
			return guardedBatch
		}
		return msg
	}
}

// report writes the crash to a file in dir (--record's, else the
// temporary directory), readable by the user only, and returns the error
// that names it.
func (c *crash) report(dir string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if dir == "" {
		dir = os.TempDir()
	}
	text := fmt.Sprintf("voicetui %s: the interface crashed at %s\n\npanic: %v\n\n%s", versionString(), time.Now().Format(time.RFC3339), c.value, c.stack)
	path := filepath.Join(dir, fmt.Sprintf("voicetui-crash-%s.txt", time.Now().Format("20060102-150405")))
	f, err := createPrivate(path, os.O_TRUNC)
	if err == nil {
		_, err = f.WriteString(text)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %v (the report could not be written: %v); the session was closed and what it recorded kept", errInterfaceCrashed, c.value, err)
	}
	return fmt.Errorf("%w: %v; the session was closed and what it recorded kept; details in %s (please report it)", errInterfaceCrashed, c.value, path)
}
