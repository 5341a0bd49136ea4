package ui

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

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

// wrap breaks a styled line into rows of at most w cells, at spaces.
// ansi.Wrap always breaks at hyphens too, which cuts flags in two
// ("-- / output-device"), can leave an empty row after "--", and a row a
// hyphen too wide: hyphens are hidden from it as non-breaking ones, and a
// row still too wide (a word longer than w) is cut by cells.
func wrap(s string, w int) []string {
	var rows []string
	for _, r := range strings.Split(ansi.Wrap(strings.ReplaceAll(s, "-", nbHyphen), w, " "), "\n") {
		r = strings.ReplaceAll(r, nbHyphen, "-")
		if ansi.StringWidth(r) > w {
			rows = append(rows, strings.Split(ansi.Hardwrap(r, w, true), "\n")...)
			continue
		}
		rows = append(rows, r)
	}
	return rows
}

// nbHyphen is U+2011, one cell wide like "-".
const nbHyphen = "\u2011"

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

// The transcript pane is part of a value model: Bubble Tea copies the
// model on every Update, so the pane holds only what survives copying.
// Text is kept as strings (a strings.Builder panics when written through
// a copy at another address), and the lines slice is never written in
// place: adding or replacing a line makes a new backing array, so no two
// copies ever see each other's writes.

// line is one entry of the transcript. Its text never changes; a changed
// line is a new line.
type line struct {
	who         string // "you", "agent" or "tool"
	text        string
	interrupted bool
	// rows is the line sanitised, styled and wrapped for one width, made
	// on first draw and shared by every copy of the line: a memo of its
	// immutable text, so sharing it is safe. A long session draws only its
	// last screenful, from these.
	rows *wrapped
}

type wrapped struct {
	width int
	rows  []string
}

type transcriptPane struct {
	lines   []line
	interim string
	partial string // the agent's reply as it streams
	reply   int    // index of the current reply's line, -1 when none
}

// maxLines is how many finished lines the pane keeps.
const maxLines = 200

func newTranscript() transcriptPane { return transcriptPane{reply: -1} }

func (p *transcriptPane) add(l line) {
	l.rows = &wrapped{}
	keep := p.lines
	if len(keep) >= maxLines {
		keep = keep[len(keep)-maxLines+1:]
		p.reply = max(p.reply-(len(p.lines)-len(keep)), -1)
	}
	p.lines = append(slices.Clip(keep), l) // a new array: copies keep theirs
}

// replace puts l at i, in a new array.
func (p *transcriptPane) replace(i int, l line) {
	l.rows = &wrapped{}
	lines := slices.Clone(p.lines)
	lines[i] = l
	p.lines = lines
}

// endReply turns a reply that stopped without its final text (an error,
// a close) into a line marked as cut short.
func (p *transcriptPane) endReply() {
	if p.partial != "" {
		p.add(line{who: "agent", text: p.partial, interrupted: true})
		p.partial = ""
	}
	p.reply = -1
}

// joinPiece appends a streamed piece: sentences (the local session) are
// joined by a space, pieces that carry their own spacing (a room's
// transcription stream) as they are.
func joinPiece(text, piece string) string {
	if text == "" || piece == "" {
		return text + piece
	}
	last, _ := utf8.DecodeLastRuneInString(text)
	first, _ := utf8.DecodeRuneInString(piece)
	if unicode.IsSpace(last) || unicode.IsSpace(first) {
		return text + piece
	}
	return text + " " + piece
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
			p.partial = joinPiece(p.partial, v.Text)
			return
		}
		streaming := p.partial != ""
		p.partial = ""
		if v.Text == "" {
			return
		}
		// An interruption after the reply's final text marks that line,
		// wherever it is now; before it, the partial becomes the line.
		if v.Interrupted && !streaming && p.reply >= 0 {
			p.replace(p.reply, line{who: "agent", text: v.Text, interrupted: true})
			p.reply = -1
			return
		}
		p.add(line{who: "agent", text: v.Text, interrupted: v.Interrupted})
		p.reply = len(p.lines) - 1
		if v.Interrupted {
			p.reply = -1
		}
	case conversation.Tool:
		p.add(line{who: "tool", text: ToolLine(v)})
	case conversation.State:
		if v.Agent == "listening" || v.Agent == "thinking" {
			p.endReply() // a failed reply's text stays, marked
		}
	case conversation.Close:
		p.endReply()
	}
}

// view draws the last h rows; only lines that reach the screen are
// looked at.
func (p transcriptPane) view(st styles, w, h int) string {
	var tail []string // the rows below the finished lines
	if p.partial != "" {
		tail = append(tail, wrap(st.agent.Render("agent:")+" "+safe(p.partial, 2000)+"…", w)...)
	}
	if p.interim != "" {
		tail = append(tail, wrap(st.dim.Render("you:   "+safe(p.interim, 500)+"…"), w)...)
	}
	var blocks [][]string // finished lines' rows, newest first
	n := len(tail)
	for i := len(p.lines) - 1; i >= 0 && n < h; i-- {
		rows := p.lines[i].wrappedTo(st, w)
		blocks = append(blocks, rows)
		n += len(rows)
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

// wrappedTo is l's rows at width w, from its memo when it has them.
func (l line) wrappedTo(st styles, w int) []string {
	if l.rows == nil { // a line made without add (none is)
		return l.render(st, w)
	}
	if l.rows.rows == nil || l.rows.width != w {
		l.rows.rows, l.rows.width = l.render(st, w), w
	}
	return l.rows.rows
}

// render is l sanitised, styled and wrapped to w.
func (l line) render(st styles, w int) []string {
	who := st.you.Render("you:  ")
	switch l.who {
	case "agent":
		who = st.agent.Render("agent:")
	case "tool":
		who = st.dim.Render("tool: ")
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
		// What failed works again: the error of its stage is over.
		if v.OK && p.closed == nil && p.err != nil && p.err.Stage == v.Stage {
			p.err, p.fallback = nil, nil
			p.back = v.Device
		}
	case conversation.Close:
		p.closed = &v
		if p.err == nil && v.Error != nil {
			p.err = v.Error // a close with no error event before it (the microphone)
		}
	}
}

// view shows the last error in full, or a calm line, in at most maxRows
// rows inside the border. It is laid out by rows first (what it says, one
// entry a row: the error, its details, the hint, the countdown, what was
// heard, the close), then each row is wrapped, so a wrapped row is never
// cut in two by another. What does not fit is cut by importance: the
// hint first, then the details, and so on; the first row stays.
func (p statusPane) view(st styles, w, maxRows int, now time.Time) string {
	inner := w - 4 // border and padding
	box := st.box
	var rows []statusRow
	add := func(text string, cut int) { rows = append(rows, statusRow{text: text, cut: cut}) }
	e := p.err
	switch {
	case e == nil && p.closed == nil && p.back != "":
		add(st.good.Render("✓ the "+safe(p.back, 20)+" works again"), cutNever)
	case e == nil && p.closed == nil:
		add(st.good.Render("✓ all good")+st.dim.Render(" · no errors"), cutNever)
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
		add(head, cutNever)
		hint := ""
		if q := e.Quota; q != nil {
			add(fmt.Sprintf("quota %s · %s · remaining %s", orDash(safe(q.Type, 20)), orDash(safe(q.Category, 60)), orDash(safe(q.RemainingLimit, 20))), cutDetails)
			hint = q.Hint
		} else {
			add(safe(e.Message, 300), cutDetails)
			hint = e.Hint
		}
		if hint != "" {
			add("hint: "+safe(hint, 300), cutHint)
		}
		if left := p.retryUntil.Sub(now); !p.retryUntil.IsZero() && left > 0 {
			add(st.warn.Render(fmt.Sprintf("retrying in %ds", int((left+time.Second-1)/time.Second))), cutRetry)
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
			add(st.dim.Render(what+" played"), cutHeard)
		case f.OK:
			add(st.good.Render("fallback "+what+" played"), cutHeard)
		case f.Error != "":
			add(st.bad.Render("fallback "+what+" failed: "+safe(f.Error, 120)), cutHeard)
		default:
			add(st.dim.Render("fallback sound off (--no-error-audio)"), cutHeard)
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
		add(line, cutClose)
	}
	return box.Width(w - 2).Render(strings.Join(layoutRows(rows, inner, maxRows), "\n"))
}

// statusRow is one entry of the status pane, before wrapping; cut is its
// place in the order in which rows give way when the pane has no room.
type statusRow struct {
	text string
	cut  int
}

// The order rows give way in: the lowest first.
const (
	cutHint = iota
	cutDetails
	cutRetry
	cutHeard
	cutClose
	cutNever
)

// layoutRows wraps rows to w and fits them in maxRows (at least 1): rows
// that do not fit are first shortened to one row ending in "…", the
// first to give way first, then dropped in the same order.
func layoutRows(rows []statusRow, w, maxRows int) []string {
	maxRows = max(maxRows, 1)
	blocks := make([][]string, len(rows))
	total := 0
	for i, r := range rows {
		blocks[i] = wrap(r.text, w)
		total += len(blocks[i])
	}
	order := make([]int, len(rows)) // indexes, the first to give way first
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return rows[a].cut - rows[b].cut })
	// Shorten, keeping as many rows of each as there is room for.
	for _, i := range order {
		if total <= maxRows {
			break
		}
		if over := total - maxRows; len(blocks[i]) > 1 {
			keep := max(len(blocks[i])-over, 1)
			total -= len(blocks[i]) - keep
			blocks[i] = ellipsis(blocks[i][:keep], w)
		}
	}
	// Drop, the first row never.
	for _, i := range order {
		if total <= maxRows {
			break
		}
		if i > 0 && len(blocks[i]) > 0 {
			total -= len(blocks[i])
			blocks[i] = nil
		}
	}
	var out []string
	for _, b := range blocks {
		out = append(out, b...)
	}
	if len(out) > maxRows { // only the first row is left, wrapped
		out = ellipsis(out[:maxRows], w)
	}
	return out
}

// ellipsis marks the last of rows as cut short (in a copy).
func ellipsis(rows []string, w int) []string {
	rows = slices.Clone(rows)
	last := len(rows) - 1
	rows[last] = ansi.Truncate(rows[last], w-1, "") + "…"
	return rows
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

// ToolLine is how a tool the agent ran reads in a transcript: its name,
// its arguments, ok or failed, and what it answered.
func ToolLine(t conversation.Tool) string {
	status := "ok"
	if !t.OK {
		status = "failed"
	}
	text := t.Name + " " + t.Arguments + " -> " + status
	if t.Output != "" {
		text += ": " + t.Output
	}
	return text
}
