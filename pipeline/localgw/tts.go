package localgw

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/audio"
)

// utterance is the text of one reply as it arrives on a TTS socket.
type ttsUtterance struct {
	texts  chan string // sentences; closed by session.flush
	faults []FaultRule
}

// tts serves one TTS socket: session.create, then utterances in turn.
// Each utterance is a request for the quota rules (the socket's first is
// admitted at the handshake); sentences are spoken as they arrive.
func (s *Server) serveTTS(w http.ResponseWriter, r *http.Request) {
	defer s.track()() // before the hijack: Close waits for this session
	if s.opts.Upstream.passes(TTS) {
		if faults, ok := s.admit(w, r, TTS); ok {
			s.passSocket(w, r, TTS, faults)
		}
		return
	}
	ss, faults, create, ok := s.open(w, r, TTS)
	if !ok {
		return
	}
	defer ss.conn.CloseNow()
	sampleRate, ok := rate(create["sample_rate"])
	if str(create, "type") != "session.create" || !ok {
		ss.fail(`first message must be {"type":"session.create","sample_rate":"8000".."48000","encoding":"pcm_s16le"}`)
		return
	}
	voice := s.speech.Voice(str(create, "voice"), str(create, "language"))
	if err := ss.send(map[string]any{"type": "session.created", "voice": voice, "model": TTSModel}); err != nil {
		return
	}
	s.log.Debug("tts session", "rate", sampleRate, "voice", voice)

	utterances := make(chan *ttsUtterance, 1)
	ctx, cancel := context.WithCancel(ss.ctx)
	defer cancel()
	// The speaker goroutine writes under its own ctx; on the way out the
	// socket closes first, so a write to a client that stopped reading
	// ends too.
	speaking := make(chan struct{})
	go func() {
		defer close(speaking)
		s.speak(ctx, ss, sampleRate, voice, utterances)
	}()
	defer func() { cancel(); ss.conn.CloseNow(); <-speaking }()

	var cur *ttsUtterance
	first := true
	skip := false // the current utterance failed: ignore it up to its flush
	for {
		m, err := ss.read()
		if err != nil {
			ss.failRead(err)
			return
		}
		switch str(m, "type") {
		case "input_transcript", "session.flush":
			if skip {
				skip = str(m, "type") != "session.flush"
				continue
			}
			if cur == nil {
				if !first {
					refused, f := s.policy.Admit(TTS)
					if refused != nil {
						ss.refuseInStream(refused)
						return
					}
					faults = f
					if f, ok := fault(faults, ServerErr); ok {
						ss.journal.note(ss.req, "tts", http.StatusServiceUnavailable, "fault "+f.String()+", one utterance")
						// This utterance fails; the socket stays usable.
						ss.send(map[string]any{"type": "error", "message": "embedded gateway: injected fault tts:5xx", "code": http.StatusServiceUnavailable})
						skip = true
						continue
					}
				}
				first = false
				cur = &ttsUtterance{texts: make(chan string, 256), faults: faults}
				select {
				case utterances <- cur:
				case <-speaking:
					return
				}
			}
			if str(m, "type") == "session.flush" {
				close(cur.texts)
				cur = nil
				continue
			}
			select {
			case cur.texts <- str(m, "transcript"):
			default:
				ss.fail("too many sentences in one utterance (256)")
				return
			}
		case "session.close":
			ss.conn.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// speak synthesizes utterances in order, streaming 100 ms output_audio
// frames, then done after each flushed utterance.
func (s *Server) speak(ctx context.Context, ss *session, sampleRate int, voice string, utterances <-chan *ttsUtterance) error {
	rs, err := audio.NewResampler(s.speech.Rate(), sampleRate)
	if err != nil {
		return err
	}
	frame := sampleRate / 10
	var out []int16
	var raw []byte
	for {
		var u *ttsUtterance
		select {
		case u = <-utterances:
		case <-ctx.Done():
			return nil
		}
		if _, ok := fault(u.faults, KeepAlive); ok {
			// Busy, never speaking: messages a client does not wait for,
			// every half second, until the socket ends.
			t := time.NewTicker(500 * time.Millisecond)
			for i := 0; ; i++ {
				kind := "session.created"
				if i%2 == 1 {
					kind = "keepalive"
				}
				if ss.sendCtx(ctx, map[string]any{"type": kind}) != nil {
					t.Stop()
					return ctx.Err()
				}
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
		}
		sent := 0 // frames of this utterance
		flush := func(all bool) error {
			for len(out) >= frame || (all && len(out) > 0) {
				n := min(frame, len(out))
				if sent == 0 {
					if f, ok := fault(u.faults, Delay); ok && !sleep(ctx, f.Delay) {
						return ctx.Err()
					}
					if _, ok := fault(u.faults, BadFrame); ok {
						ss.sendCtx(ctx, map[string]any{"type": "output_audio", "audio": "not base64!"})
					}
				}
				raw = raw[:0]
				for _, v := range out[:n] {
					raw = binary.LittleEndian.AppendUint16(raw, uint16(v))
				}
				if err := ss.sendCtx(ctx, map[string]any{"type": "output_audio", "audio": base64.StdEncoding.EncodeToString(raw)}); err != nil {
					return err
				}
				out = out[n:]
				sent++
				if sent == 1 {
					if _, ok := fault(u.faults, Disconnect); ok {
						ss.conn.CloseNow()
						return fmt.Errorf("injected disconnect")
					}
					if _, ok := fault(u.faults, Stall); ok {
						<-ctx.Done()
						return ctx.Err()
					}
				}
			}
			return nil
		}
		for {
			// Wait for text, or for the socket to end: an utterance the
			// client abandoned before its flush never closes texts.
			var text string
			var more bool
			select {
			case text, more = <-u.texts:
			case <-ctx.Done():
				return nil
			}
			if !more {
				break
			}
			err := s.speech.Synthesize(ctx, text, voice, func(pcm []int16) error {
				out = rs.Process(out, pcm)
				return flush(false)
			})
			if err != nil {
				if ctx.Err() == nil {
					ss.sendCtx(ctx, map[string]any{"type": "error", "message": "embedded gateway: " + err.Error(), "code": http.StatusInternalServerError})
				}
				return err
			}
		}
		if err := flush(true); err != nil {
			return err
		}
		if err := ss.sendCtx(ctx, map[string]any{"type": "done"}); err != nil {
			return err
		}
	}
}
