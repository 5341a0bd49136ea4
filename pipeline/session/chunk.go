package session

import (
	"strings"
	"unicode/utf8"
)

// chunker cuts a streamed reply into pieces for TTS: whole sentences, and
// for the very first piece an earlier clause, so speech starts sooner.
type chunker struct {
	buf   strings.Builder
	first bool // the first piece has been cut
}

// minClause is the shortest first clause worth speaking on its own.
const minClause = 20

// add appends streamed text and returns the pieces now complete.
func (c *chunker) add(text string) []string {
	c.buf.WriteString(text)
	var out []string
	for {
		s := c.buf.String()
		cut := boundary(s, !c.first)
		if cut < 0 {
			return out
		}
		piece := strings.TrimSpace(s[:cut])
		rest := s[cut:]
		c.buf.Reset()
		c.buf.WriteString(rest)
		if piece != "" {
			out = append(out, piece)
			c.first = true
		}
	}
}

// rest returns what is left at the end of the reply.
func (c *chunker) rest() string {
	s := strings.TrimSpace(c.buf.String())
	c.buf.Reset()
	return s
}

// boundary is the end of the first complete piece in s, or -1: a sentence
// end (. ! ? followed by a space; 。！？ with or without one), or, when
// clause is set, a clause end (, ; : followed by a space; 、，；：) after at
// least minClause bytes.
//
// Hand-written rather than a sentence segmenter (neurosnap/sentences,
// ICU): those want the whole text, and a streamed reply must be cut as it
// comes, the first piece as soon as it is complete.
func boundary(s string, clause bool) int {
	for i, r := range s {
		end := i + utf8.RuneLen(r)
		switch {
		case r == '.' || r == '!' || r == '?':
			if spaceAt(s, end) {
				return end
			}
		case r == ',' || r == ';' || r == ':':
			if clause && i >= minClause && spaceAt(s, end) {
				return end
			}
		case strings.ContainsRune(wideSentenceEnds, r):
			if cut, ok := afterWide(s, end); ok {
				return cut
			}
		case strings.ContainsRune(wideClauseEnds, r):
			if cut, ok := afterWide(s, end); ok && clause && i >= minClause {
				return cut
			}
		}
	}
	return -1
}

// Chinese and Japanese punctuation: no space follows it.
const (
	wideSentenceEnds = "。！？"
	wideClauseEnds   = "、，；："
	closers          = "」』）】〉》”’\"'"
)

func spaceAt(s string, i int) bool { return i < len(s) && (s[i] == ' ' || s[i] == '\n') }

// afterWide is where a piece ending in wide punctuation at i ends: after
// the closing brackets and quotes that follow it. ok is false while the
// text might still go on with one.
func afterWide(s string, i int) (int, bool) {
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		if !strings.ContainsRune(closers, r) {
			return i, true
		}
		i += n
	}
	return 0, false
}
