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
	"github.com/voicetui/voicetui/pipeline/conversation"
)

// Info describes the backend for the header.
type Info struct {
	Backend string // "embedded gateway", "LiveKit Inference", "OpenAI-compatible"
	Detail  string // where and which models
	// TextMode starts with the input open: there is no microphone.
	TextMode bool
	// Echo is whether the speaker's echo is cancelled: "on", or "off"
	// with why ("" when not known: not shown).
	Echo string
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
	EventMsg conversation.Event
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

// actedMsg is the outcome of the control-endpoint action at the head of
// the queue.
type actedMsg string

// Model is the root of the interface: it routes messages to the panes and
// lays them out.
type Model struct {
	ctl    Controller
	keys   keyMap
	help   help.Model
	styles styles
	now    func() time.Time

	width, height int

	header     headerPane
	meters     metersPane
	transcript transcriptPane
	status     statusPane
	metrics    metricsPane

	agent    string
	ended    bool
	notice   string
	noticeAt time.Time

	showHelp bool
	typing   bool
	input    textinput.Model
	exhaust  int // which stage x exhausts next
	// actions waits to run control-endpoint actions one at a time, in the
	// order of the keys: "x" then "0" must leave the quota restored. The
	// head is running.
	actions []tea.Cmd
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
	m := Model{ctl: ctl, keys: newKeys(ctl.Quota != nil && ctl.Reset != nil), help: h,
		styles: newStyles(renderer), now: time.Now, agent: "initializing", input: in,
		header: headerPane{info: info, agent: "initializing"}, meters: metersPane{out: audio.Silence},
		transcript: newTranscript()}
	if info.TextMode {
		m.typing = true
		m.input.Focus()
	}
	return m.resize(80, 24)
}

// resize lays out for a terminal of w x h cells.
func (m Model) resize(w, h int) Model {
	m.width, m.height = w, h
	m.help.Width = w - 4
	m.input.Width = max(w-len(m.input.Prompt)-2, 10) // the input scrolls instead of being cut
	return m
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
		m = m.resize(msg.Width, msg.Height)
	case tickMsg:
		if m.notice != "" && m.now().Sub(m.noticeAt) > 5*time.Second {
			m.notice = ""
		}
		return m, tick()
	case LevelMsg:
		m.meters.in, m.meters.out = msg.In, msg.Out
	case EventMsg:
		m.event(conversation.Event(msg))
	case ClosedMsg:
		m.ended = true
	case actedMsg:
		m.notice, m.noticeAt = string(msg), m.now()
		m.actions = m.actions[1:]
		return m, m.nextAction()
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *Model) event(e conversation.Event) {
	if st, ok := e.Payload.(conversation.State); ok {
		m.agent = st.Agent
	}
	m.header.event(e.Payload)
	m.transcript.event(e.Payload)
	m.status.event(e.Payload, m.now())
	m.metrics.event(e.Payload)
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
	case m.showHelp:
		// other keys wait until the overlay is closed
	case key.Matches(k, m.keys.Mute):
		m.header.muted = !m.header.muted
		m.meters.muted = m.header.muted
		if m.ctl.SetMuted != nil {
			m.ctl.SetMuted(m.header.muted)
		}
	case key.Matches(k, m.keys.Text):
		m.typing = true
		return m, m.input.Focus()
	case key.Matches(k, m.keys.Replay):
		if m.agent == "speaking" || m.agent == "thinking" {
			m.notice, m.noticeAt = "the agent has the speaker: replay when it listens", m.now()
		} else if m.ctl.Replay != nil {
			m.ctl.Replay()
		}
	case key.Matches(k, m.keys.Exhaust):
		stage := []string{"llm", "stt", "tts"}[m.exhaust%3]
		m.exhaust++
		return m.act("credits exhausted for "+stage, func() error { return m.ctl.Quota(stage + ":credits") })
	case key.Matches(k, m.keys.RateBurst):
		return m.act("rate-limit burst on the next 2 LLM requests", func() error { return m.ctl.Quota("llm:rate:count=2") })
	case key.Matches(k, m.keys.Restore):
		return m.act("quota restored", m.ctl.Reset)
	}
	return m, nil
}

// act queues a control-endpoint action, to run off the interface's
// goroutine after those before it, and report what happened.
func (m Model) act(done string, f func() error) (tea.Model, tea.Cmd) {
	m.actions = append(m.actions, func() tea.Msg {
		if err := f(); err != nil {
			return actedMsg("embedded gateway: " + err.Error())
		}
		return actedMsg("embedded gateway: " + done)
	})
	if len(m.actions) > 1 {
		return m, nil // the one running starts it when it is done
	}
	return m, m.nextAction()
}

// nextAction is the command at the head of the queue, or nil.
func (m Model) nextAction() tea.Cmd {
	if len(m.actions) == 0 {
		return nil
	}
	return m.actions[0]
}

// View lays the panes out top to bottom; the transcript takes what the
// others leave, and the status pane never pushes the header off.
func (m Model) View() string {
	w := max(m.width, 20)
	st := m.styles
	if m.showHelp {
		return st.box.Width(w - 2).Render(st.title.Render("keys") + "\n" + m.help.View(m.keys))
	}
	header := m.header.view(st, w)
	meters := m.meters.view(st, w)
	metrics := m.metrics.view(st, w)
	footer := m.footerView(w)
	fixed := lipgloss.Height(header) + lipgloss.Height(meters) + lipgloss.Height(metrics) + lipgloss.Height(footer)
	status := m.status.view(st, w, max(m.height-fixed-3, 2), m.now()) // 2 border rows, 1 transcript row
	transcript := m.transcript.view(st, w, max(m.height-fixed-lipgloss.Height(status), 1))
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
