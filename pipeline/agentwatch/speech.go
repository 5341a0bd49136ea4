package agentwatch

import "time"

// Speech follows the user's speech from a voice detector's 20 ms frames:
// a remote agent's own view of it arrives late or not at all, and the
// watchdog counts from the end of what the user said.
type Speech struct {
	voicedRun, silentRun int
	voiced               int // frames of voice in the current speech
	speaking             bool
}

// Frames of speechFrame: voice for startFrames starts speech, silence for
// endFrames ends it.
const (
	speechFrame = 20 * time.Millisecond
	startFrames = 10 // 200 ms
	endFrames   = 25 // 500 ms
)

// Frame feeds one frame; it reports whether the user started or stopped
// speaking with it (End has then been called).
func (s *Speech) Frame(voiced bool) (started, stopped bool) {
	if voiced {
		s.voicedRun++
		s.silentRun = 0
	} else {
		s.silentRun++
		if s.silentRun > 2 {
			s.voicedRun = 0
		}
	}
	if s.speaking && voiced {
		s.voiced++
	}
	if !s.speaking && s.voicedRun >= startFrames {
		s.speaking, s.voiced = true, s.voicedRun
		return true, false
	}
	return false, s.speaking && s.silentRun >= endFrames
}

// Speaking reports whether the user is speaking.
func (s *Speech) Speaking() bool { return s.speaking }

// End ends the current speech (also when the input ended mid-speech): how
// much voice it held, and how long the silence after it has lasted (the
// voice ended that long ago).
func (s *Speech) End() (voice, silence time.Duration) {
	s.speaking = false
	return time.Duration(s.voiced) * speechFrame, time.Duration(s.silentRun) * speechFrame
}
