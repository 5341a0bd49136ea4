package localgw

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/audio"
)

// serveSTT serves one STT socket: session.create, then input_audio
// through a speech segmenter that endpoints by itself, as the real
// gateway's models do: start_of_speech when voice starts, an interim
// transcript per half second of voice, and at the end of each utterance
// (EndOfUtterance of silence) the final transcript, pushed without being
// asked. session.finalize ends the utterance at once and is answered with
// session.finalized. After the client's session.close nothing is sent:
// the socket is closed (agents-js 1.9.0 crashes on a message that comes
// after it closed its stream).
//
// The socket is one request for the quota rules; a credits rule set while
// it is open ends it at the next utterance's end.
func (s *Server) serveSTT(w http.ResponseWriter, r *http.Request) {
	defer s.track()() // before the hijack: Close waits for this session
	if s.opts.Upstream.passes(STT) {
		if faults, ok := s.admit(w, r, STT); ok {
			s.passSocket(w, r, STT, faults)
		}
		return
	}
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
	if err := ss.send(map[string]any{"type": "session.created"}); err != nil {
		return
	}
	words := s.transcriber(ss.ctx, sampleRate)
	defer words.close()
	seg := newSegmenter(sampleRate)
	var pcm []int16
	transcripts := 0
	emit := func(kind, text string, start, voiced time.Duration) error {
		if transcripts == 0 {
			if _, ok := fault(faults, BadFrame); ok {
				ss.conn.Write(ss.ctx, websocket.MessageText, []byte(`{"type":"interim_transcript","transcript":`))
			}
		}
		transcripts++
		err := ss.send(map[string]any{"type": kind, "transcript": text, "language": "en",
			"start": start.Seconds(), "duration": voiced.Seconds(), "confidence": 0.5, "words": []any{}})
		if _, ok := fault(faults, Disconnect); ok && transcripts == 1 {
			ss.conn.CloseNow()
			return fmt.Errorf("injected disconnect")
		}
		return err
	}
	// final ends the utterance: its transcript, unless a credits rule set
	// while the socket was open refuses it (refused reports that).
	final := func(start, voiced time.Duration) (refused bool, err error) {
		if rule := s.policy.CreditsSince(STT, gen); rule != nil {
			ss.refuseInStream(rule)
			return true, nil
		}
		if f, ok := fault(faults, Delay); ok && !sleep(ss.ctx, f.Delay) {
			return false, ss.ctx.Err()
		}
		text := words.final(voiced)
		seg.reset()
		return false, emit("final_transcript", text, start, voiced)
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
				switch ev.kind {
				case speechStarted:
					words.begin(ev.pre)
					err = ss.send(map[string]any{"type": "start_of_speech"})
				case speechAudio:
					words.feed(ev.pcm)
				case speechGrew:
					err = emit("interim_transcript", words.interim(seg.voiced()), seg.start, seg.voiced())
				case speechEnded:
					var refused bool
					if refused, err = final(ev.start, ev.voiced); refused {
						return
					}
				}
				if err != nil {
					return
				}
			}
		case "session.finalize":
			if seg.heard() {
				if refused, err := final(seg.start, seg.voiced()); refused || err != nil {
					return
				}
			}
			if ss.send(map[string]any{"type": "session.finalized"}) != nil {
				return
			}
		case "session.update":
			// Model and language changes are accepted; the engines have neither.
		case "session.close":
			ss.conn.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// EndOfUtterance is the silence after speech at which the embedded STT
// ends an utterance by itself. A client that finalizes sooner (voicetui's
// own session, at 0.5 s) ends it first.
const EndOfUtterance = 600 * time.Millisecond

type segKind int

const (
	speechStarted segKind = iota + 1 // pre: the audio just before, for a recogniser
	speechAudio                      // pcm: audio of the utterance (voice and its pauses)
	speechGrew                       // another half second of voice: time for an interim
	speechEnded                      // EndOfUtterance of silence after voice
)

type segEvent struct {
	kind          segKind
	pre           []int16       // speechStarted
	pcm           []int16       // speechAudio
	start, voiced time.Duration // speechEnded: the utterance's
}

// segmenter finds utterances with audio.VoiceDetector: speech starts after
// 100 ms of voice and ends after EndOfUtterance of silence (or when the
// client finalizes); it keeps the last preRoll of audio so that a
// recogniser hears the start of the first word.
type segmenter struct {
	vad         *audio.VoiceDetector
	rate        int
	run         int // consecutive voiced frames
	quiet       int // consecutive silent frames while speaking
	frames      int // frames seen
	voicedN     int // voiced frames in this utterance
	started     bool
	start       time.Duration // when speech started
	lastInterim int
	recent      []int16 // the last preRoll of audio, while not speaking
}

const (
	startFrames = 5  // 100 ms
	interimEach = 25 // 500 ms of voice
	preRoll     = 500 * time.Millisecond
)

func newSegmenter(rate int) *segmenter {
	return &segmenter{vad: audio.NewVoiceDetector(rate), rate: rate}
}

// feed classifies pcm and returns what happened, in order. The chunks of
// an utterance (voice and its pauses) are reported as speechAudio; those
// before it are kept for the next speechStarted.
func (g *segmenter) feed(pcm []int16) []segEvent {
	wasSpeaking := g.started
	startAt := -1
	var evs []segEvent
	g.vad.Feed(pcm, func(voiced bool, _ float64) {
		g.frames++
		if voiced {
			g.run++
			g.quiet = 0
		} else {
			g.run = 0
			if g.started {
				g.quiet++
			}
		}
		switch {
		case g.started && voiced:
			g.voicedN++
			if g.voicedN-g.lastInterim >= interimEach {
				g.lastInterim = g.voicedN
				evs = append(evs, segEvent{kind: speechGrew})
			}
		case !g.started && g.run >= startFrames:
			g.started = true
			g.voicedN, g.lastInterim = g.run, g.run
			g.start = time.Duration(g.frames-g.run) * 20 * time.Millisecond
			startAt = len(evs)
			evs = append(evs, segEvent{kind: speechStarted, pre: g.recent}, segEvent{kind: speechGrew})
			g.recent = nil
		case g.started && time.Duration(g.quiet)*20*time.Millisecond >= EndOfUtterance:
			evs = append(evs, segEvent{kind: speechEnded, start: g.start, voiced: g.voiced()})
			g.reset()
		}
	})
	chunk := segEvent{kind: speechAudio, pcm: pcm}
	switch {
	case wasSpeaking:
		evs = append([]segEvent{chunk}, evs...)
	case startAt >= 0:
		evs = append(evs[:startAt+1], append([]segEvent{chunk}, evs[startAt+1:]...)...)
	default:
		g.recent = append(g.recent, pcm...)
		if keep := int(preRoll.Seconds() * float64(g.rate)); len(g.recent) > keep {
			g.recent = append(g.recent[:0:0], g.recent[len(g.recent)-keep:]...)
		}
	}
	return evs
}

func (g *segmenter) heard() bool           { return g.started }
func (g *segmenter) voiced() time.Duration { return time.Duration(g.voicedN) * 20 * time.Millisecond }

// reset ends the utterance: the next voice starts a new one.
func (g *segmenter) reset() {
	g.started, g.voicedN, g.lastInterim, g.quiet, g.run = false, 0, 0, 0, 0
}
