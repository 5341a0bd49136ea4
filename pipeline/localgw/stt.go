package localgw

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/audio"
)

// serveSTT serves one STT socket: session.create, then input_audio
// through an energy-based speech detector. Transcripts come from the
// script (one line per utterance) or say that they are simulated. The
// socket is one request for the quota rules; a credits rule set while it
// is open ends it at the next session.finalize.
func (s *Server) serveSTT(w http.ResponseWriter, r *http.Request) {
	defer s.track()() // before the hijack: Close waits for this session
	gen := s.policy.Generation()
	ss, faults, create, ok := s.open(w, r, STT)
	if !ok {
		return
	}
	defer ss.conn.CloseNow()
	settings, _ := create["settings"].(map[string]any)
	sampleRate, ok := rate(settings["sample_rate"])
	if str(create, "type") != "session.create" || !ok {
		ss.fail(`first message must be {"type":"session.create","settings":{"sample_rate":"8000".."48000","encoding":"pcm_s16le"}}`)
		return
	}
	if err := ss.send(map[string]string{"type": "session.created", "session_id": fmt.Sprintf("stt-%p", ss)}); err != nil {
		return
	}
	seg := newSegmenter(sampleRate)
	var pcm []int16
	transcripts := 0
	emit := func(kind, text string) error {
		if transcripts == 0 {
			if _, ok := fault(faults, BadFrame); ok {
				ss.conn.Write(ss.ctx, websocket.MessageText, []byte(`{"type":"interim_transcript","transcript":`))
			}
		}
		transcripts++
		err := ss.send(map[string]any{"type": kind, "transcript": text, "language": "en",
			"start": seg.start.Seconds(), "duration": seg.voiced().Seconds(), "confidence": 0.5, "words": []any{}})
		if _, ok := fault(faults, Disconnect); ok && transcripts == 1 {
			ss.conn.CloseNow()
			return fmt.Errorf("injected disconnect")
		}
		return err
	}
	for {
		m, err := ss.read()
		if err != nil {
			ss.failRead(err)
			return
		}
		switch str(m, "type") {
		case "input_audio":
			b, err := base64.StdEncoding.DecodeString(str(m, "audio"))
			if err != nil || len(b)%2 != 0 {
				ss.fail("input_audio must be base64 of pcm_s16le")
				return
			}
			pcm = pcm[:0]
			for i := 0; i+1 < len(b); i += 2 {
				pcm = append(pcm, int16(binary.LittleEndian.Uint16(b[i:])))
			}
			for _, ev := range seg.feed(pcm) {
				switch ev {
				case speechStarted:
					err = ss.send(map[string]string{"type": "start_of_speech"})
				case speechGrew:
					err = emit("interim_transcript", s.interim(seg.voiced()))
				}
				if err != nil {
					return
				}
			}
		case "session.finalize":
			// Credits that run out while the socket is open end it too.
			if rule := s.policy.CreditsSince(STT, gen); rule != nil {
				ss.refuseInStream(rule)
				return
			}
			if f, ok := fault(faults, Delay); ok && !sleep(ss.ctx, f.Delay) {
				return
			}
			if seg.heard() {
				text := s.nextScriptLine()
				if text == "" {
					text = placeholder(seg.voiced())
				}
				if emit("final_transcript", text) != nil {
					return
				}
				seg.reset()
			}
			if ss.send(map[string]string{"type": "session.finalized"}) != nil {
				return
			}
		case "session.update":
			// Model and language changes are accepted; the detector has neither.
		case "session.close":
			ss.send(map[string]string{"type": "session.closed"})
			ss.conn.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// interim is the partial transcript after voiced speech: the next script
// line's first words in proportion (about 3 words a second), or the
// placeholder.
func (s *Server) interim(voiced time.Duration) string {
	s.mu.Lock()
	line := ""
	if len(s.script) > 0 {
		line = s.script[0]
	}
	s.mu.Unlock()
	if line == "" {
		return placeholder(voiced)
	}
	words := strings.Fields(line)
	n := min(len(words), max(1, int(voiced.Seconds()*3)))
	return strings.Join(words[:n], " ")
}

// placeholder says what was heard without pretending to transcribe it.
func placeholder(voiced time.Duration) string {
	return fmt.Sprintf("[speech, %.1f s]", voiced.Seconds())
}

type segEvent int

const (
	speechStarted segEvent = iota + 1
	speechGrew             // another half second of speech: time for an interim transcript
)

// segmenter finds speech with audio.VoiceDetector: speech starts after
// 100 ms of voice; the client ends the utterance with session.finalize.
type segmenter struct {
	vad         *audio.VoiceDetector
	run         int // consecutive voiced frames
	frames      int // frames seen
	voicedN     int // voiced frames in this utterance
	started     bool
	start       time.Duration // when speech started
	lastInterim int
}

const (
	startFrames  = 5  // 100 ms
	interimEvery = 25 // 500 ms of voice
)

func newSegmenter(rate int) *segmenter {
	return &segmenter{vad: audio.NewVoiceDetector(rate)}
}

func (g *segmenter) feed(pcm []int16) []segEvent {
	var evs []segEvent
	g.vad.Feed(pcm, func(voiced bool, _ float64) {
		g.frames++
		if !voiced {
			g.run = 0
			return
		}
		g.run++
		if g.started {
			g.voicedN++
			if g.voicedN-g.lastInterim >= interimEvery {
				g.lastInterim = g.voicedN
				evs = append(evs, speechGrew)
			}
		} else if g.run >= startFrames {
			g.started = true
			g.voicedN = g.run
			g.start = time.Duration(g.frames-g.run) * 20 * time.Millisecond
			evs = append(evs, speechStarted, speechGrew)
			g.lastInterim = g.voicedN
		}
	})
	return evs
}

func (g *segmenter) heard() bool           { return g.started }
func (g *segmenter) voiced() time.Duration { return time.Duration(g.voicedN) * 20 * time.Millisecond }
func (g *segmenter) reset()                { g.started, g.voicedN, g.lastInterim = false, 0, 0 }
