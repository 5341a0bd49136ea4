package ui

import (
	"io"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/voicetui/voicetui/pipeline/conversation"
)

// StatusText is the status pane as the interface draws it once events
// have happened, as plain text (the frame kept, colours dropped), w
// columns wide: what a QA report keeps of what the user saw. The clock
// stands at the last event (a retry's countdown reads as it did then).
// Without keys, the interface's key hints are left out (a pane shown
// elsewhere, as in the demo).
func StatusText(events []conversation.Event, w int, keys bool) string {
	r := lipgloss.NewRenderer(io.Discard)
	r.SetColorProfile(termenv.Ascii)
	st := newStyles(r)
	p := statusPane{noKeys: !keys}
	start := time.Unix(0, 0)
	now := start
	for _, e := range events {
		now = start.Add(e.T)
		p.event(e.Payload, now)
	}
	return ansi.Strip(p.view(st, w, 12, now))
}
