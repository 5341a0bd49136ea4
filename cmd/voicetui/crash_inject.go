//go:build crashtest

package main

import tea "github.com/charmbracelet/bubbletea"

// A build for the crash test (go build -tags crashtest): F12 makes the
// interface panic, so the test can prove what a crash keeps. Release
// builds have no such key (crash_none.go).
func injectCrash(m tea.Model) tea.Model { return panicky{m} }

type panicky struct{ tea.Model }

func (p panicky) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && k.Type == tea.KeyF12 {
		panic("injected panic (crashtest build, F12)")
	}
	m, cmd := p.Model.Update(msg)
	return panicky{m}, cmd
}
