// Package ui is the terminal interface: a Bubble Tea program that shows a
// voice session from its event stream (pipeline/session) and drives it
// through a Controller. Panes: header, meters, transcript, status (always
// visible: the last error, the gateway's hint, the fallback), metrics.
// Every piece of network text is sanitized before it is rendered.
package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/session"
)

// Info describes the backend for the header.
type Info struct {
	Backend string // "embedded gateway", "LiveKit Inference", "OpenAI-compatible"
	Detail  string // where and which models
}

// Controller is what the keys act on. Nil functions disable their keys.
type Controller struct {
	SetMuted func(bool)
	Say      func(string)
	Replay   func()
	// Embedded gateway only: add a quota rule, remove all rules.
	Quota func(rule string) error
	Reset func() error
}

// Messages the program receives.
type (
	// EventMsg is one session event.
	EventMsg session.Event
	// LevelMsg carries the meters: the microphone's level and bands, the
	// speaker's level (dBFS).
	LevelMsg struct {
		In  audio.Levels
		Out float64
	}
	// ClosedMsg says the session is over (the interface stays up).
	ClosedMsg struct{ Err error }
	tickMsg   time.Time
)

// line is one entry of the transcript.
type line struct {
	who         string // "you" or "agent"
	text        string
	interrupted bool
}

// Model is the interface's state.
type Model struct {
	info   Info
	ctl    Controller
	keys   keyMap
	help   help.Model
	styles styles
	now    func() time.Time

	width, height int

	agent, user string
	muted       bool
	in          audio.Levels
	out         float64

	lines   []line
	interim string
	partial strings.Builder // the agent's reply as it streams

	lastErr    *session.Error
	retryUntil time.Time
	fallback   *session.Fallback
	closed     *session.Close
	ended      bool
	metrics    *session.Metrics
	notice     string // the result of a quota key

	showHelp bool
	typing   bool
	input    textinput.Model
	exhaust  int // which stage x exhausts next
}

// New builds the interface. renderer pins the colour profile (tests);
// nil means the terminal's.
func New(info Info, ctl Controller, renderer *lipgloss.Renderer) Model {
	if renderer == nil {
		renderer = lipgloss.DefaultRenderer()
	}
	in := textinput.New()
	in.Prompt = "say: "
	in.CharLimit = 500
	h := help.New()
	h.ShowAll = true
	return Model{info: info, ctl: ctl, keys: newKeys(ctl.Quota != nil && ctl.Reset != nil), help: h,
		styles: newStyles(renderer), now: time.Now, width: 80, height: 24,
		agent: "initializing", user: "listening", input: in, out: audio.Silence}
}

// Init starts the countdown clock.
func (m Model) Init() tea.Cmd { return tick() }

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// Update handles keys, session events and meters.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		return m, tick()
	case LevelMsg:
		m.in, m.out = msg.In, msg.Out
	case EventMsg:
		m.event(session.Event(msg))
	case ClosedMsg:
		m.ended = true
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) event(e session.Event) {
	switch p := e.Payload.(type) {
	case session.State:
		m.agent, m.user = p.Agent, p.User
	case session.Transcript:
		if p.Final {
			m.interim = ""
			m.lines = append(m.lines, line{who: "you", text: p.Text})
		} else {
			m.interim = p.Text
		}
	case session.AgentText:
		if !p.Final {
			if m.partial.Len() > 0 {
				m.partial.WriteByte(' ')
			}
			m.partial.WriteString(p.Text)
			return
		}
		streaming := m.partial.Len() > 0
		m.partial.Reset()
		if p.Text == "" {
			return
		}
		// An interruption after the reply's final text marks that line;
		// before it, the partial reply becomes the line.
		if n := len(m.lines); p.Interrupted && !streaming && n > 0 && m.lines[n-1].who == "agent" {
			m.lines[n-1].text, m.lines[n-1].interrupted = p.Text, true
			return
		}
		m.lines = append(m.lines, line{who: "agent", text: p.Text, interrupted: p.Interrupted})
	case session.Error:
		m.lastErr = &p
		m.retryUntil = time.Time{}
		if p.RetryInMs > 0 {
			m.retryUntil = m.now().Add(time.Duration(p.RetryInMs) * time.Millisecond)
		}
		m.fallback = nil
	case session.Fallback:
		m.fallback = &p
	case session.Metrics:
		m.metrics = &p
		m.lastErr, m.fallback = nil, nil // a reply played: all good again
	case session.Close:
		m.closed = &p
	}
	if len(m.lines) > 200 {
		m.lines = m.lines[len(m.lines)-200:]
	}
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.typing {
		switch {
		case key.Matches(k, m.keys.Send):
			text := strings.TrimSpace(m.input.Value())
			m.typing = false
			m.input.Reset()
			m.input.Blur()
			if text != "" && m.ctl.Say != nil {
				m.ctl.Say(text)
			}
			return m, nil
		case key.Matches(k, m.keys.Cancel):
			m.typing = false
			m.input.Reset()
			m.input.Blur()
			return m, nil
		case k.Type == tea.KeyCtrlC:
			return m, tea.Quit
		}
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(k)
		return m, cmd
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(k, m.keys.Help):
		m.showHelp = !m.showHelp
	case key.Matches(k, m.keys.Mute):
		m.muted = !m.muted
		if m.ctl.SetMuted != nil {
			m.ctl.SetMuted(m.muted)
		}
	case key.Matches(k, m.keys.Text):
		m.typing = true
		return m, m.input.Focus()
	case key.Matches(k, m.keys.Replay):
		if m.ctl.Replay != nil {
			m.ctl.Replay()
		}
	case key.Matches(k, m.keys.Exhaust):
		stage := []string{"llm", "stt", "tts"}[m.exhaust%3]
		m.exhaust++
		m.notice = m.act("credits exhausted for "+stage, func() error { return m.ctl.Quota(stage + ":credits") })
	case key.Matches(k, m.keys.RateBurst):
		m.notice = m.act("rate-limit burst on the next 2 LLM requests", func() error { return m.ctl.Quota("llm:rate:count=2") })
	case key.Matches(k, m.keys.Restore):
		m.notice = m.act("quota restored", m.ctl.Reset)
	}
	return m, nil
}

// act runs a control-endpoint action and says what happened.
func (m Model) act(done string, f func() error) string {
	if err := f(); err != nil {
		return "embedded gateway: " + err.Error()
	}
	return "embedded gateway: " + done
}

// View lays the panes out top to bottom; the transcript takes what the
// others leave.
func (m Model) View() string {
	w := max(m.width, 20)
	if m.showHelp {
		return m.styles.box.Width(w - 2).Render(m.styles.title.Render("keys") + "\n" + m.help.View(m.keys))
	}
	header := m.headerView(w)
	meters := m.metersView(w)
	status := m.statusView(w)
	metrics := m.metricsView(w)
	footer := m.footerView(w)
	used := lipgloss.Height(header) + lipgloss.Height(meters) + lipgloss.Height(status) + lipgloss.Height(metrics) + lipgloss.Height(footer)
	transcript := m.transcriptView(w, max(m.height-used, 1))
	return lipgloss.JoinVertical(lipgloss.Left, header, meters, transcript, status, metrics, footer)
}

func (m Model) footerView(w int) string {
	if m.typing {
		return fit(m.input.View(), w)
	}
	if m.notice != "" {
		return fit(m.styles.dim.Render(m.notice), w)
	}
	return fit(m.help.ShortHelpView(m.keys.ShortHelp()), w)
}

func fmtMs(ms int64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.1fs", float64(ms)/1000)
	}
	return fmt.Sprintf("%dms", ms)
}
