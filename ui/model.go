// Package ui is the terminal interface: a Bubble Tea program that shows a
// voice session from its event stream (pipeline/session) and drives it
// through a Controller. Panes: header, meters, transcript, status (always
// visible: the last error, the gateway's hint, the fallback), metrics.
// Every piece of network text is sanitized before it is rendered.
package ui

import (
	"fmt"
	"slices"
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
	m := Model{ctl: ctl, keys: newKeys(ctl.Quota != nil && ctl.Reset != nil, info.TextMode), help: h,
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
	switch v := e.Payload.(type) {
	case conversation.State:
		m.agent = v.Agent
	case conversation.Close:
		m.agent = "closed" // nobody has the speaker now, whatever state it closed in
	}
	m.header.event(e.Payload)
	m.transcript.event(e.Payload)
	m.status.event(e.Payload, m.now())
	m.metrics.event(e.Payload)
}

func (m Model) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.showHelp { // any key closes the overlay; its own key and esc only that
		m.showHelp = false
		help := m.keys.Help
		if m.typing {
			help = m.keys.typing.Help // "?" is text there
		}
		if key.Matches(k, help) || k.Type == tea.KeyEsc {
			return m, nil
		}
	}
	if m.typing {
		return m.typingKey(k)
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return m, tea.Quit
	case key.Matches(k, m.keys.Help):
		m.showHelp = true
	case key.Matches(k, m.keys.Text):
		m.typing = true
		return m, m.input.Focus()
	}
	return m.command(k, m.keys.Mute, m.keys.Replay, m.keys.Exhaust, m.keys.RateBurst, m.keys.Restore)
}

// typingKey handles a key while the prompt is open: every printable key
// is text; commands only through their control and function keys.
func (m Model) typingKey(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	t := m.keys.typing
	switch {
	case key.Matches(k, t.Quit):
		return m, tea.Quit
	case key.Matches(k, t.Help):
		m.showHelp = true
		return m, nil
	case key.Matches(k, t.Send):
		return m.send()
	case key.Matches(k, t.Close):
		m.typing = false // the draft stays for the next ctrl+t
		m.input.Blur()
		return m, nil
	case key.Matches(k, t.Mute, t.Replay, t.Exhaust, t.RateBurst, t.Restore):
		return m.command(k, t.Mute, t.Replay, t.Exhaust, t.RateBurst, t.Restore)
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(k)
	return m, cmd
}

// send sends the typed message; the prompt stays open for the next one.
// A message that cannot be sent stays in the prompt, said why.
func (m Model) send() (tea.Model, tea.Cmd) {
	text := strings.TrimSpace(m.input.Value())
	switch {
	case text == "":
		return m, nil
	case m.ended:
		m.notice, m.noticeAt = "the session is closed: your message was not sent", m.now()
		return m, nil
	case m.ctl.Say == nil:
		m.notice, m.noticeAt = "this conversation takes no typed messages", m.now()
		return m, nil
	}
	m.ctl.Say(text)
	m.input.Reset()
	return m, nil
}

// command runs one of the commands, given the bindings that name them in
// the current mode.
func (m Model) command(k tea.KeyMsg, mute, replay, exhaust, burst, restore key.Binding) (tea.Model, tea.Cmd) {
	switch {
	case key.Matches(k, mute):
		m.header.muted = !m.header.muted
		m.meters.muted = m.header.muted
		if m.ctl.SetMuted != nil {
			m.ctl.SetMuted(m.header.muted)
		}
	case key.Matches(k, replay):
		if m.agent == "speaking" || m.agent == "thinking" {
			m.notice, m.noticeAt = "the agent has the speaker: replay when it listens", m.now()
		} else if m.ctl.Replay != nil {
			m.ctl.Replay()
		}
	case key.Matches(k, exhaust):
		stage := []string{"llm", "stt", "tts"}[m.exhaust%3]
		m.exhaust++
		return m.act("credits exhausted for "+stage, func() error { return m.ctl.Quota(stage + ":credits") })
	case key.Matches(k, burst):
		return m.act("rate-limit burst on the next 2 LLM requests", func() error { return m.ctl.Quota("llm:rate:count=2") })
	case key.Matches(k, restore):
		return m.act("quota restored", m.ctl.Reset)
	}
	return m, nil
}

// act queues a control-endpoint action, to run off the interface's
// goroutine after those before it, and report what happened.
func (m Model) act(done string, f func() error) (tea.Model, tea.Cmd) {
	// A new array: the queue of an older copy of the model is never
	// written through this one.
	m.actions = append(slices.Clip(m.actions), func() tea.Msg {
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
// others leave, and the status pane never pushes the header off. A
// terminal too short for every pane loses the meters, then the metrics,
// then the header's detail line: the frame is never taller than the
// terminal, nor wider.
func (m Model) View() string {
	w, h := max(m.width, 20), max(m.height, 1)
	st := m.styles
	if m.showHelp {
		return fitRows(st.box.Width(w-2).Render(m.overlayView(w-4)), w, h)
	}
	header := m.header.view(st, w)
	meters := m.meters.view(st, w)
	metrics := m.metrics.view(st, w)
	footer := m.footerView(w)
	const least = 3 + 1 // a status row in its border, a transcript row
	fixed := func() int {
		return lipgloss.Height(header) + lipgloss.Height(footer) + height(meters) + height(metrics)
	}
	if fixed()+least > h {
		meters = ""
	}
	if fixed()+least > h {
		metrics = ""
	}
	if fixed()+least > h {
		header = strings.SplitN(header, "\n", 2)[0]
	}
	status := m.status.view(st, w, max(h-fixed()-3, 1), m.now()) // 2 border rows, 1 transcript row
	transcript := m.transcript.view(st, w, max(h-fixed()-lipgloss.Height(status), 1))
	parts := []string{header}
	for _, p := range []string{meters, transcript, status, metrics, footer} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	return fitRows(lipgloss.JoinVertical(lipgloss.Left, parts...), w, h)
}

// overlayView is the help overlay's text: every key of the interface in
// a column, its meaning beside it, wrapped to w.
func (m Model) overlayView(w int) string {
	rows := []string{m.styles.title.Render("keys")}
	for _, b := range m.keys.FullHelp()[0] {
		if !b.Enabled() {
			continue
		}
		const col = 15 // the keys' column and a space
		for i, d := range wrap(m.styles.dim.Render(b.Help().Desc), max(w-col, 10)) {
			k := ""
			if i == 0 {
				k = b.Help().Key
			}
			rows = append(rows, fmt.Sprintf("%-*s%s", col, k, d))
		}
	}
	return strings.Join(rows, "\n")
}

// height is s's rows; none for "".
func height(s string) int {
	if s == "" {
		return 0
	}
	return lipgloss.Height(s)
}

// fitRows cuts a frame to w columns and its last h rows (the footer with
// the prompt stays, when even one row is more than the terminal has).
func fitRows(s string, w, h int) string {
	rows := strings.Split(fit(s, w), "\n")
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	return strings.Join(rows, "\n")
}

// footerView is the key hints, or the prompt over its keys while typing
// (and the last notice instead of the keys while it is fresh).
func (m Model) footerView(w int) string {
	hints := m.help.ShortHelpView(m.keys.ShortHelp())
	if m.typing {
		hints = m.help.ShortHelpView(m.keys.typing.ShortHelp())
	}
	if m.notice != "" {
		hints = m.styles.dim.Render(safe(m.notice, 300))
	}
	if m.typing {
		return fit(m.input.View()+"\n"+hints, w)
	}
	return fit(hints, w)
}

func fmtMs(ms int64) string {
	if ms >= 1000 {
		return fmt.Sprintf("%.1fs", float64(ms)/1000)
	}
	return fmt.Sprintf("%dms", ms)
}
