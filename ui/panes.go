package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// Each pane is a sub-model: its own state, fed by the events that concern
// it, and a view of a given width. The root Model routes and lays out.

// fit cuts every line of s to w cells (styles kept), so nothing wraps.
func fit(s string, w int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(lines, "\n")
}

// wrap breaks a styled line into rows of at most w cells.
func wrap(s string, w int) []string { return strings.Split(ansi.Wrap(s, w, " "), "\n") }

// safe is network text made inert and short enough for a line.
func safe(s string, limit int) string { return safetext.Sanitize(s, limit) }

// --- header ---------------------------------------------------------------

type headerPane struct {
	info   Info
	agent  string
	muted  bool
	closed bool
}

func (p *headerPane) event(e any) {
	switch v := e.(type) {
	case conversation.State:
		p.agent = v.Agent
	case conversation.Close:
		p.closed = true
	}
}

func (p headerPane) view(st styles, w int) string {
	state := p.agent
	if p.closed {
		state = "closed"
	}
	s, ok := st.state[state]
	if !ok {
		s = st.dim
	}
	mic := st.good.Render("mic on")
	switch {
	case p.info.TextMode:
		mic = st.bad.Render("NO MIC") + st.dim.Render(" (typing)")
	case p.muted:
		mic = st.bad.Render("MIC MUTED")
	}
	first := fmt.Sprintf("%s · %s · agent %s · %s", st.title.Render("voicetui"), p.info.Backend, s.Render(state), mic)
	if p.info.Echo != "" {
		first += st.dim.Render(" · AEC " + p.info.Echo)
	}
	return fit(first+"\n"+st.dim.Render(safe(p.info.Detail, 300)), w)
}

// --- meters ---------------------------------------------------------------

type metersPane struct {
	in    audio.Levels
	out   float64
	muted bool
}

var blocks = []rune("▁▂▃▄▅▆▇█")

// bar maps dBFS (-60..0) to a block.
func bar(db float64) rune {
	i := int((db + 60) / 60 * float64(len(blocks)))
	return blocks[min(max(i, 0), len(blocks)-1)]
}

func level(db float64) string {
	if db <= audio.Silence {
		return " -inf dBFS"
	}
	return fmt.Sprintf("%5.1f dBFS", db)
}

func (p metersPane) view(st styles, w int) string {
	var bands strings.Builder
	for _, b := range p.in.Bands {
		bands.WriteRune(bar(b))
	}
	for range 14 - len(p.in.Bands) {
		bands.WriteRune(blocks[0])
	}
	in := p.in.RMS
	if len(p.in.Bands) == 0 {
		in = audio.Silence
	}
	label := "mic"
	if p.muted {
		label = "mic (muted)"
	}
	return fit(fmt.Sprintf("%s %s %s  out %s %s", label, st.meter.Render(bands.String()), level(in),
		st.meter.Render(strings.Repeat(string(bar(p.out)), 4)), level(p.out)), w)
}

// --- transcript -------------------------------------------------------------

// line is one entry of the transcript.
type line struct {
	who         string // "you" or "agent"
	text        string
	interrupted bool
	// The line sanitised, styled and wrapped, for width; a long session
	// draws only its last screenful, from these.
	rows  []string
	width int
}

type transcriptPane struct {
	lines   []line
	interim string
	partial strings.Builder // the agent's reply as it streams
	reply   int             // index of the current reply's line, -1 when none
}

func newTranscript() transcriptPane { return transcriptPane{reply: -1} }

func (p *transcriptPane) add(l line) {
	p.lines = append(p.lines, l)
	if len(p.lines) > 200 {
		p.lines = p.lines[len(p.lines)-200:]
		p.reply = max(p.reply-1, -1)
	}
}

// endReply turns a reply that stopped without its final text (an error,
// a close) into a line marked as cut short.
func (p *transcriptPane) endReply() {
	if p.partial.Len() > 0 {
		p.add(line{who: "agent", text: p.partial.String(), interrupted: true})
		p.partial.Reset()
	}
	p.reply = -1
}

func (p *transcriptPane) event(e any) {
	switch v := e.(type) {
	case conversation.Transcript:
		if !v.Final {
			p.interim = v.Text
			return
		}
		p.interim = ""
		p.add(line{who: "you", text: v.Text})
	case conversation.AgentText:
		if !v.Final {
			if p.partial.Len() > 0 {
				p.partial.WriteByte(' ')
			}
			p.partial.WriteString(v.Text)
			return
		}
		streaming := p.partial.Len() > 0
		p.partial.Reset()
		if v.Text == "" {
			return
		}
		// An interruption after the reply's final text marks that line,
		// wherever it is now; before it, the partial becomes the line.
		if v.Interrupted && !streaming && p.reply >= 0 {
			p.lines[p.reply] = line{who: "agent", text: v.Text, interrupted: true} // drawn anew
			p.reply = -1
			return
		}
		p.add(line{who: "agent", text: v.Text, interrupted: v.Interrupted})
		p.reply = len(p.lines) - 1
		if v.Interrupted {
			p.reply = -1
		}
	case conversation.State:
		if v.Agent == "listening" || v.Agent == "thinking" {
			p.endReply() // a failed reply's text stays, marked
		}
	case conversation.Close:
		p.endReply()
	}
}

// view draws the last h rows. Finished lines are wrapped once per width
// and kept (the pane's lines share their backing array with every copy of
// the model, so the cache outlives this value receiver); only lines that
// reach the screen are looked at.
func (p transcriptPane) view(st styles, w, h int) string {
	var tail []string // the rows below the finished lines
	if p.partial.Len() > 0 {
		tail = append(tail, wrap(st.agent.Render("agent:")+" "+safe(p.partial.String(), 2000)+"…", w)...)
	}
	if p.interim != "" {
		tail = append(tail, wrap(st.dim.Render("you:   "+safe(p.interim, 500)+"…"), w)...)
	}
	var blocks [][]string // finished lines' rows, newest first
	n := len(tail)
	for i := len(p.lines) - 1; i >= 0 && n < h; i-- {
		l := &p.lines[i]
		if l.width != w || l.rows == nil {
			l.rows, l.width = l.render(st, w), w
		}
		blocks = append(blocks, l.rows)
		n += len(l.rows)
	}
	var rows []string
	for i := len(blocks) - 1; i >= 0; i-- {
		rows = append(rows, blocks[i]...)
	}
	rows = append(rows, tail...)
	if len(rows) == 0 {
		rows = []string{st.dim.Render("(say something, or press ctrl+t to type)")}
	}
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	for len(rows) < h {
		rows = append(rows, "")
	}
	return strings.Join(rows, "\n")
}

// render is l sanitised, styled and wrapped to w.
func (l line) render(st styles, w int) []string {
	who := st.you.Render("you:  ")
	if l.who == "agent" {
		who = st.agent.Render("agent:")
	}
	text := safe(l.text, 2000)
	if l.interrupted {
		text += st.warn.Render(" [interrupted]")
	}
	return wrap(who+" "+text, w)
}

// --- status -----------------------------------------------------------------

type statusPane struct {
	err        *conversation.Error
	retryUntil time.Time
	fallback   *conversation.Fallback
	closed     *conversation.Close
	back       string // a device that came back, said until the next error
	noKeys     bool   // outside the interface: its keys are not there
}

func (p *statusPane) event(e any, now time.Time) {
	switch v := e.(type) {
	case conversation.Error:
		p.err, p.back = &v, ""
		p.retryUntil = time.Time{}
		if v.RetryInMs > 0 {
			p.retryUntil = now.Add(time.Duration(v.RetryInMs) * time.Millisecond)
		}
		if v.RetryInMs == 0 {
			p.fallback = nil
		}
	case conversation.Fallback:
		p.fallback = &v
	case conversation.Metrics:
		if p.closed == nil {
			p.err, p.fallback = nil, nil // a reply played: all good again
		}
	case conversation.Device:
		if v.OK && p.closed == nil && p.err != nil && p.err.Stage == "device" {
			p.err, p.fallback = nil, nil // the device is back
			p.back = v.Device
		}
	case conversation.Close:
		p.closed = &v
		if p.err == nil && v.Error != nil {
			p.err = v.Error // a close with no error event before it (the microphone)
		}
	}
}

// view shows the last error in full, or a calm line; at most maxRows rows
// inside the border (the hint is cut first).
func (p statusPane) view(st styles, w, maxRows int, now time.Time) string {
	inner := w - 4 // border and padding
	var rows []string
	box := st.box
	e := p.err
	hint := ""
	switch {
	case e == nil && p.closed == nil && p.back != "":
		rows = append(rows, st.good.Render("✓ the "+safe(p.back, 20)+" works again"))
	case e == nil && p.closed == nil:
		rows = append(rows, st.good.Render("✓ all good")+st.dim.Render(" · no errors"))
	case e != nil:
		kind := st.warn.Render("transient")
		if e.Terminal {
			kind = st.bad.Render("TERMINAL")
			box = st.badBox
		}
		head := fmt.Sprintf("%s error · %s", strings.ToUpper(orDash(e.Stage)), kind)
		if e.Status != 0 {
			head += fmt.Sprintf(" · HTTP %d", e.Status)
		}
		if e.Attempt > 1 {
			head += fmt.Sprintf(" · attempt %d", e.Attempt)
		}
		rows = append(rows, head)
		if q := e.Quota; q != nil {
			rows = append(rows, fmt.Sprintf("quota %s · %s · remaining %s", orDash(safe(q.Type, 20)), orDash(safe(q.Category, 60)), orDash(safe(q.RemainingLimit, 20))))
			if q.Hint != "" {
				hint = "hint: " + safe(q.Hint, 300)
			}
		} else {
			rows = append(rows, safe(e.Message, 300))
			if e.Hint != "" {
				hint = "hint: " + safe(e.Hint, 300)
			}
		}
		if left := p.retryUntil.Sub(now); !p.retryUntil.IsZero() && left > 0 {
			rows = append(rows, st.warn.Render(fmt.Sprintf("retrying in %ds", int((left+time.Second-1)/time.Second))))
		}
	}
	if f := p.fallback; f != nil {
		what := "clip " + f.Clip
		switch {
		case f.Text != "" && f.Clip == "":
			what = "message"
		case f.Clip == "earcon_failed":
			what = "earcon (that turn failed, go on)"
		case f.Clip == "earcon_device":
			what = "earcon (a device stopped)"
		}
		switch {
		case f.OK && strings.HasPrefix(f.Clip, "earcon"):
			rows = append(rows, st.dim.Render(what+" played"))
		case f.OK:
			rows = append(rows, st.good.Render("fallback "+what+" played"))
		case f.Error != "":
			rows = append(rows, st.bad.Render("fallback "+what+" failed: "+safe(f.Error, 120)))
		default:
			rows = append(rows, st.dim.Render("fallback sound off (--no-error-audio)"))
		}
	}
	if c := p.closed; c != nil {
		if c.Reason == "error" {
			box = st.badBox
		}
		line := st.title.Render("session closed (" + c.Reason + ")")
		if !p.noKeys {
			line += st.dim.Render(" · q quits · f replays the clip")
		}
		rows = append(rows, line)
	}
	var out []string
	for _, r := range rows {
		out = append(out, wrap(r, inner)...)
	}
	if hint != "" { // after the first two rows, as long as room allows
		h := wrap(hint, inner)
		room := max(maxRows-len(out), 1)
		if len(h) > room {
			h = h[:room]
			h[room-1] = ansi.Truncate(h[room-1], inner-1, "") + "…"
		}
		at := min(2, len(out))
		out = append(out[:at], append(h, out[at:]...)...)
	}
	if len(out) > maxRows {
		out = out[:maxRows]
	}
	return box.Width(w - 2).Render(strings.Join(out, "\n"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// --- metrics ----------------------------------------------------------------

type metricsPane struct{ last *conversation.Metrics }

func (p *metricsPane) event(e any) {
	if v, ok := e.(conversation.Metrics); ok {
		p.last = &v
	}
}

func (p metricsPane) view(st styles, w int) string {
	x := p.last
	if x == nil {
		return st.dim.Render(fit("turn -  eou -  stt -  llm -  tts -  e2e -", w))
	}
	e2e := fmtMs(x.E2EMs)
	if x.E2EMs >= 1000 {
		e2e = st.bad.Render(e2e)
	}
	return fit(fmt.Sprintf("turn %d  eou %s  stt %s  llm %s  tts %s  e2e %s", x.Turn, fmtMs(x.EOUMs), fmtMs(x.STTMs),
		fmtMs(x.LLMTTFTMs), fmtMs(x.TTSTTFBMs), e2e), w)
}
