//go:build race

package ui

// raceEnabled: the race detector makes every frame about ten times
// slower; the random sessions are fewer then (make test also runs them
// without it, in full).
const raceEnabled = true
