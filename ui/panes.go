package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline"
)

// fit cuts every line of s to w cells (styles kept), so nothing wraps.
func fit(s string, w int) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, w, "…")
	}
	return strings.Join(lines, "\n")
}

// safe is network text made inert and short enough for a line.
func safe(s string, limit int) string { return pipeline.Sanitize(s, limit) }

func (m Model) headerView(w int) string {
	st, ok := m.styles.state[m.agent]
	if !ok {
		st = m.styles.dim
	}
	mic := m.styles.good.Render("mic on")
	if m.muted {
		mic = m.styles.bad.Render("MIC MUTED")
	}
	first := fmt.Sprintf("%s · %s · agent %s · %s", m.styles.title.Render("voicetui"), m.info.Backend, st.Render(m.agent), mic)
	return fit(first+"\n"+m.styles.dim.Render(safe(m.info.Detail, 300)), w)
}

var blocks = []rune("▁▂▃▄▅▆▇█")

// bar maps dBFS (-60..0) to a block.
func bar(db float64) rune {
	i := int((db + 60) / 60 * float64(len(blocks)))
	return blocks[min(max(i, 0), len(blocks)-1)]
}

func level(db float64) string {
	if db <= audio.Silence {
		return "  -inf dBFS"
	}
	return fmt.Sprintf("%6.1f dBFS", db)
}

func (m Model) metersView(w int) string {
	var bands strings.Builder
	for _, b := range m.in.Bands {
		bands.WriteRune(bar(b))
	}
	for range 14 - len(m.in.Bands) {
		bands.WriteRune(blocks[0])
	}
	in := m.in.RMS
	if len(m.in.Bands) == 0 {
		in = audio.Silence
	}
	micLabel := "mic"
	if m.muted {
		micLabel = "mic (muted)"
	}
	out := string(bar(m.out))
	return fit(fmt.Sprintf("%s %s %s   %s %s %s", micLabel, m.styles.meter.Render(bands.String()), level(in),
		"out", m.styles.meter.Render(strings.Repeat(out, 4)), level(m.out)), w)
}

func (m Model) transcriptView(w, h int) string {
	var rows []string
	for _, l := range m.lines {
		who := m.styles.you.Render("you:  ")
		if l.who == "agent" {
			who = m.styles.agent.Render("agent:")
		}
		text := safe(l.text, 2000)
		if l.interrupted {
			text += m.styles.warn.Render(" [interrupted]")
		}
		rows = append(rows, wrap(who+" "+text, w)...)
	}
	if m.partial.Len() > 0 {
		rows = append(rows, wrap(m.styles.agent.Render("agent:")+" "+safe(m.partial.String(), 2000)+"…", w)...)
	}
	if m.interim != "" {
		rows = append(rows, wrap(m.styles.dim.Render("you:   "+safe(m.interim, 500)+"…"), w)...)
	}
	if len(rows) == 0 {
		rows = []string{m.styles.dim.Render("(say something, or press ctrl+t to type)")}
	}
	if len(rows) > h {
		rows = rows[len(rows)-h:]
	}
	for len(rows) < h {
		rows = append(rows, "")
	}
	return strings.Join(rows, "\n")
}

// wrap breaks a styled line into rows of at most w cells.
func wrap(s string, w int) []string {
	return strings.Split(ansi.Wrap(s, w, " "), "\n")
}

// statusView is always there: the last error in full, or a calm line.
func (m Model) statusView(w int) string {
	inner := w - 4 // border and padding
	var rows []string
	box := m.styles.box
	e := m.lastErr
	switch {
	case e == nil && m.closed == nil:
		rows = append(rows, m.styles.good.Render("✓ all good")+m.styles.dim.Render(" · no errors"))
	case e != nil:
		kind := m.styles.warn.Render("transient")
		if e.Terminal {
			kind = m.styles.bad.Render("TERMINAL")
			box = m.styles.badBox
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
				rows = append(rows, "hint: "+safe(q.Hint, 300))
			}
		} else {
			rows = append(rows, safe(e.Message, 300))
		}
		if !m.retryUntil.IsZero() {
			if left := m.retryUntil.Sub(m.now()); left > 0 {
				rows = append(rows, m.styles.warn.Render(fmt.Sprintf("retrying in %ds", int(left.Round(time.Second)/time.Second))))
			}
		}
	}
	if f := m.fallback; f != nil {
		what := "clip " + f.Clip
		if f.Text != "" && f.Clip == "" {
			what = "message"
		}
		switch {
		case f.OK:
			rows = append(rows, m.styles.good.Render("fallback "+what+" played"))
		case f.Error != "":
			rows = append(rows, m.styles.bad.Render("fallback "+what+" failed: "+safe(f.Error, 200)))
		default:
			rows = append(rows, m.styles.dim.Render("fallback sound off (--no-error-audio)"))
		}
	}
	if c := m.closed; c != nil {
		if c.Reason == "error" {
			box = m.styles.badBox
		}
		rows = append(rows, m.styles.title.Render("session closed ("+c.Reason+")")+m.styles.dim.Render(" · q quits · f replays the clip"))
	}
	for i, r := range rows {
		rows[i] = strings.Join(wrap(r, inner), "\n")
	}
	return box.Width(w - 2).Render(strings.Join(rows, "\n"))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (m Model) metricsView(w int) string {
	x := m.metrics
	if x == nil {
		return m.styles.dim.Render(fit("turn -  eou -  stt -  llm -  tts -  e2e -", w))
	}
	e2e := fmtMs(x.E2EMs)
	if x.E2EMs >= 1000 {
		e2e = m.styles.bad.Render(e2e)
	}
	return fit(fmt.Sprintf("turn %d  eou %s  stt %s  llm %s  tts %s  e2e %s", x.Turn, fmtMs(x.EOUMs), fmtMs(x.STTMs),
		fmtMs(x.LLMTTFTMs), fmtMs(x.TTSTTFBMs), e2e), w)
}
