package localgw

import (
	"fmt"
	"strings"
	"time"
)

// transcriber makes the words of one STT socket's utterances: from the
// --stt-script (deterministic, for tests and demos) or a placeholder that
// says what was heard without pretending to transcribe it.
type transcriber interface {
	// begin starts an utterance; pre is the audio just before its voice.
	begin(pre []int16)
	// feed gives the utterance's audio as it comes; pcm is only valid
	// during the call.
	feed(pcm []int16)
	// interim is the transcript so far, after voiced of voice.
	interim(voiced time.Duration) string
	// final ends the utterance and returns its transcript.
	final(voiced time.Duration) string
	close()
}

// transcriber picks the words for a socket at rate.
func (s *Server) transcriber(rate int) transcriber {
	if len(s.opts.STTScript) > 0 {
		return scriptWords{s}
	}
	return placeholderWords{}
}

// scriptWords takes one line of the script per utterance; interims reveal
// the line's words at about three a second of voice.
type scriptWords struct{ s *Server }

func (scriptWords) begin([]int16) {}
func (scriptWords) feed([]int16)  {}
func (scriptWords) close()        {}

func (w scriptWords) interim(voiced time.Duration) string {
	line := w.s.peekScriptLine()
	if line == "" {
		return placeholder(voiced)
	}
	words := strings.Fields(line)
	n := min(len(words), max(1, int(voiced.Seconds()*3)))
	return strings.Join(words[:n], " ")
}

func (w scriptWords) final(voiced time.Duration) string {
	if line := w.s.nextScriptLine(); line != "" {
		return line
	}
	return placeholder(voiced) // the script is used up
}

// placeholderWords says what was heard without pretending to transcribe
// it.
type placeholderWords struct{}

func (placeholderWords) begin([]int16)                       {}
func (placeholderWords) feed([]int16)                        {}
func (placeholderWords) close()                              {}
func (placeholderWords) interim(voiced time.Duration) string { return placeholder(voiced) }
func (placeholderWords) final(voiced time.Duration) string   { return placeholder(voiced) }

func placeholder(voiced time.Duration) string {
	return fmt.Sprintf("[speech, %.1f s]", voiced.Seconds())
}
