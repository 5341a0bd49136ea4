package session

import "strings"

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
// end (. ! ? followed by a space), or, when clause is set, a , ; : after at
// least minClause bytes.
func boundary(s string, clause bool) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i+1] != ' ' && s[i+1] != '\n' {
			continue
		}
		switch s[i] {
		case '.', '!', '?':
			return i + 1
		case ',', ';', ':':
			if clause && i >= minClause {
				return i + 1
			}
		}
	}
	return -1
}
