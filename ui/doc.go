// Package ui will hold the Bubble Tea terminal interface. It is empty
// until the terminal UI issue lands; see README.md, "Status".
package ui
