package main

import (
	"os"
	"testing"

	"github.com/voicetui/voicetui/cmd/voicetui/journeys"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readEvents reads an events.jsonl.
func readEvents(t *testing.T, path string) []event {
	var out []event
	for _, e := range journeys.Events(t, path) {
		out = append(out, event(e))
	}
	return out
}
