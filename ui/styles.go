package ui

import "github.com/charmbracelet/lipgloss"

type styles struct {
	title, dim, you, agent, warn, bad, good, box, badBox, meter lipgloss.Style
	state                                                       map[string]lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	c := func(s string) lipgloss.Color { return lipgloss.Color(s) }
	return styles{
		title:  r.NewStyle().Bold(true),
		dim:    r.NewStyle().Foreground(c("8")),
		you:    r.NewStyle().Foreground(c("6")).Bold(true),
		agent:  r.NewStyle().Foreground(c("5")).Bold(true),
		warn:   r.NewStyle().Foreground(c("3")),
		bad:    r.NewStyle().Foreground(c("1")).Bold(true),
		good:   r.NewStyle().Foreground(c("2")),
		meter:  r.NewStyle().Foreground(c("2")),
		box:    r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(c("8")).Padding(0, 1),
		badBox: r.NewStyle().Border(lipgloss.RoundedBorder()).BorderForeground(c("1")).Padding(0, 1),
		state: map[string]lipgloss.Style{
			"initializing": r.NewStyle().Foreground(c("8")),
			"listening":    r.NewStyle().Foreground(c("2")),
			"thinking":     r.NewStyle().Foreground(c("3")),
			"speaking":     r.NewStyle().Foreground(c("5")),
		},
	}
}
