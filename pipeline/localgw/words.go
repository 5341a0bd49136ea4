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

// decoderWait bounds the wait for a decoder: an utterance that cannot
// have one in time says what it heard instead of keeping the client
// waiting.
const decoderWait = 2 * time.Second

// sphinxWords recognises one socket's utterances with decoders of the
// server's pool, at the socket's rate resampled to 16 kHz. An utterance
// borrows a decoder from its start to its final transcript, so a socket
// holds none while nobody speaks: no decoder is loaded before the first
// utterance, and sockets that overlap (a reconnect) share one unless they
// hear speech at the same time. The Get starts with the voice, in the
// background, so that a load (the first utterance's, about 150 ms) runs
// while the user speaks; the audio waits in held meanwhile and is decoded
// in one Write when the decoder comes (at about 9x real time). An
// utterance whose decoder does not come, or fails, says what was heard
// instead.
type sphinxWords struct {
	s    *Server
	ctx  context.Context  // the socket's
	rs   *audio.Resampler // nil at 16 kHz
	buf  []int16
	d    *sphinx.Decoder  // the utterance's, once it has come
	lend chan lentDecoder // the pool's answer while it is awaited, else nil
	held []int16          // 16 kHz audio of the utterance waiting for d
	fell bool             // the utterance has no decoder: the placeholder speaks
	fall placeholderWords
}

type lentDecoder struct {
	d   *sphinx.Decoder
	err error
}

func (s *Server) sphinxWords(ctx context.Context, rate int) transcriber {
	w := &sphinxWords{s: s, ctx: ctx}
	if rate != sphinx.SampleRate {
		w.rs, _ = audio.NewResampler(rate, sphinx.SampleRate)
	}
	return w
}

func (w *sphinxWords) begin(pre []int16) {
	w.release() // an utterance left open (final ends each)
	w.fell = false
	w.held = w.held[:0]
	lend := make(chan lentDecoder, 1)
	ctx, cancel := context.WithTimeout(w.ctx, decoderWait)
	go func() {
		defer cancel()
		d, err := w.s.pool.Get(ctx)
		lend <- lentDecoder{d, err}
	}()
	w.lend = lend
	w.feed(pre)
}

// take makes the pool's decoder the utterance's once it has come (with
// wait, waiting for it), and decodes the audio held for it.
func (w *sphinxWords) take(wait bool) {
	if w.lend == nil {
		return
	}
	var l lentDecoder
	if wait {
		l = <-w.lend
	} else {
		select {
		case l = <-w.lend:
		default:
			return
		}
	}
	w.lend = nil
	if l.err != nil {
		w.s.log.Warn("stt: no recogniser for this utterance: saying what was heard instead", "error", l.err)
		w.fell = true
		return
	}
	w.d = l.d
	w.write(w.held)
	w.held = w.held[:0]
}

// write decodes 16 kHz audio with the utterance's decoder.
func (w *sphinxWords) write(pcm []int16) {
	if w.d == nil || len(pcm) == 0 {
		return
	}
	if err := w.d.Write(pcm); err != nil {
		w.failed(err)
	}
}

func (w *sphinxWords) failed(err error) {
	w.s.log.Warn("stt: the recogniser failed: saying what was heard instead", "error", err)
	w.s.pool.Put(w.d) // a failed decoder is closed by the pool
	w.d, w.fell = nil, true
}

func (w *sphinxWords) feed(pcm []int16) {
	if w.fell || (w.d == nil && w.lend == nil) {
		return
	}
	if w.rs != nil {
		w.buf = w.rs.Process(w.buf[:0], pcm)
		pcm = w.buf
	}
	w.take(false)
	if w.d == nil {
		w.held = append(w.held, pcm...)
		return
	}
	w.write(pcm)
}

func (w *sphinxWords) interim(voiced time.Duration) string {
	w.take(false)
	switch {
	case w.fell:
		return w.fall.interim(voiced)
	case w.d == nil:
		return "" // still loading: no words yet
	}
	text, err := w.d.Partial()
	if err != nil {
		w.failed(err)
		return w.fall.interim(voiced)
	}
	return text
}

func (w *sphinxWords) final(voiced time.Duration) string {
	w.take(true)
	defer w.release()
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

// release gives the utterance's decoder back, once it has come.
func (w *sphinxWords) release() {
	w.take(true)
	if w.d != nil {
		w.s.pool.Put(w.d)
		w.d = nil
	}
}

func (w *sphinxWords) close() { w.release() }
