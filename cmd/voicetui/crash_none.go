//go:build !crashtest

package main

import tea "github.com/charmbracelet/bubbletea"

// injectCrash is the identity: only the crash test's build
// (crash_inject.go) can make the interface panic on purpose.
func injectCrash(m tea.Model) tea.Model { return m }
