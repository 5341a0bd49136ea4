package session

import (
	"slices"
	"testing"
)

func TestChunker(t *testing.T) {
	var c chunker
	var got []string
	for _, tok := range []string{"Well, ", "the weather today, as far as I know", ", is fine. ", "It is 3.5 degrees", "! Bye"} {
		got = append(got, c.add(tok)...)
	}
	got = append(got, c.rest())
	want := []string{"Well, the weather today,", "as far as I know, is fine.", "It is 3.5 degrees!", "Bye"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}
