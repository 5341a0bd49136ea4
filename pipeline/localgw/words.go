package localgw

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

// transcriber makes the words of one STT socket's utterances: from the
// --stt-script (deterministic, for tests and demos), from pocketsphinx
// (real offline recognition, when installed), or a placeholder that says
// what was heard without pretending to transcribe it.
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
func (s *Server) transcriber(ctx context.Context, rate int) transcriber {
	switch {
	case len(s.opts.STTScript) > 0:
		return scriptWords{s}
	case s.pool != nil:
		return s.sphinxWords(ctx, rate)
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

// STTEngine chooses how the embedded STT finds words when there is no
// --stt-script.
type STTEngine string

const (
	// EngineAuto recognises speech with pocketsphinx when it is
	// installed, else says what was heard (EngineEnergy).
	EngineAuto STTEngine = "auto"
	// EnginePocketsphinx recognises speech offline; the gateway does not
	// start without it.
	EnginePocketsphinx STTEngine = "pocketsphinx"
	// EngineEnergy detects speech by its energy and says so:
	// "[speech, 1.4 s]".
	EngineEnergy STTEngine = "energy"
)

// decoderWait bounds the wait for a free decoder: a socket that cannot
// have one in time says what it heard instead of keeping the client
// waiting.
const decoderWait = 2 * time.Second

// sphinxWords recognises one socket's utterances with a decoder of the
// server's pool, at the socket's rate resampled to 16 kHz. A decoder that
// fails is given back and the socket falls back to the placeholder.
type sphinxWords struct {
	s    *Server
	d    *sphinx.Decoder
	rs   *audio.Resampler // nil at 16 kHz
	buf  []int16
	fall placeholderWords
}

func (s *Server) sphinxWords(ctx context.Context, rate int) transcriber {
	gctx, cancel := context.WithTimeout(ctx, decoderWait)
	defer cancel()
	d, err := s.pool.Get(gctx)
	if err != nil {
		s.log.Warn("stt: no recogniser for this socket: saying what was heard instead", "error", err)
		return placeholderWords{}
	}
	w := &sphinxWords{s: s, d: d}
	if rate != sphinx.SampleRate {
		w.rs, _ = audio.NewResampler(rate, sphinx.SampleRate)
	}
	return w
}

func (w *sphinxWords) write(pcm []int16) {
	if w.d == nil {
		return
	}
	if w.rs != nil {
		w.buf = w.rs.Process(w.buf[:0], pcm)
		pcm = w.buf
	}
	if err := w.d.Write(pcm); err != nil {
		w.failed(err)
	}
}

func (w *sphinxWords) failed(err error) {
	w.s.log.Warn("stt: the recogniser failed: saying what was heard instead", "error", err)
	w.s.pool.Put(w.d) // a failed decoder is closed by the pool
	w.d = nil
}

func (w *sphinxWords) begin(pre []int16) {
	if w.d == nil {
		return
	}
	if err := w.d.Start(); err != nil {
		w.failed(err)
		return
	}
	w.write(pre)
}

func (w *sphinxWords) feed(pcm []int16) { w.write(pcm) }

func (w *sphinxWords) interim(voiced time.Duration) string {
	if w.d == nil {
		return w.fall.interim(voiced)
	}
	text, err := w.d.Partial()
	if err != nil {
		w.failed(err)
		return w.fall.interim(voiced)
	}
	return text
}

func (w *sphinxWords) final(voiced time.Duration) string {
	if w.d == nil {
		return w.fall.final(voiced)
	}
	text, err := w.d.End()
	if err != nil {
		w.failed(err)
		return w.fall.final(voiced)
	}
	return text
}

func (w *sphinxWords) close() {
	if w.d != nil {
		w.s.pool.Put(w.d)
		w.d = nil
	}
}
