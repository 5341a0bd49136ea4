package echo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// speak is espeak-ng's speech of text at 16 kHz (voice: an espeak voice
// name; a second voice makes a second talker).
func speak(t testing.TB, text, voice string) []int16 {
	t.Helper()
	out, err := exec.Command("espeak-ng", "-v", voice, "--stdout", text).Output()
	if err != nil {
		t.Fatalf("espeak-ng (run `make setup`): %v", err)
	}
	r, err := audio.NewWAVReader(bytes.NewReader(out), "espeak")
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	buf := make([]int16, 4096)
	for {
		n, err := r.ReadSamples(buf)
		pcm = append(pcm, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	rs, err := audio.NewResampler(r.Format().SampleRate, rate)
	if err != nil {
		t.Fatal(err)
	}
	return rs.Process(nil, pcm)
}

// room is an echo path: the direct sound after delay samples, three
// reflections, and a one-pole low-pass (a small speaker), at gain.
type room struct {
	delay int
	gain  float64
}

func (r room) apply(far []int16) []float64 {
	taps := map[int]float64{0: 1, 48: 0.5, 176: -0.3, 368: 0.15} // 0, 3, 11, 23 ms
	out := make([]float64, len(far))
	for lag, g := range taps {
		for i := r.delay + lag; i < len(far); i++ {
			out[i] += g * float64(far[i-r.delay-lag])
		}
	}
	var y float64
	for i, v := range out {
		y += 0.5 * (v - y)
		out[i] = r.gain * y
	}
	return out
}

// simulation runs far (what the speaker plays) through room into a
// microphone that also hears near, with the speaker and the microphone
// reporting on a clock of their own, as devices do: the speaker hands over
// 20 ms ahead of time, the microphone delivers 60 ms at once.
type simulation struct {
	far, near []int16
	room      room
	speakerAt time.Duration // how early the speaker hands over audio
	// asleep is a stretch of far (silent) during which the device sleeps
	// between replies: the speaker reports nothing, and starts a new run.
	asleep [][2]int
	// backlog is how much audio waits in the microphone's buffer at its
	// first read (a loaded machine): it is delivered at once, the clock
	// standing still.
	backlog int
	// fastAt, fast: from sample fastAt on, the microphone's clock runs
	// ahead of the wall clock by fast samples (a fast device clock, seen
	// at once).
	fastAt, fast int
	options      *Options
	engine       engine // instead of WebRTC's
}

type simMic struct {
	pcm          []int16
	pos          int
	at           int // the clock, in samples
	backlog      int
	fastAt, fast int
	clock        *time.Time
	spk          func(upTo int) // plays what the speaker hands over by then
}

func (m *simMic) Format() audio.Format { return audio.Pipeline }
func (m *simMic) Close() error         { return nil }
func (m *simMic) Read(_ context.Context, p []int16) (int, error) {
	if m.pos >= len(m.pcm) {
		return 0, io.EOF
	}
	n := min(len(p), 3*frame*2, len(m.pcm)-m.pos) // 60 ms
	copy(p, m.pcm[m.pos:m.pos+n])
	m.pos += n
	// The clock: where the microphone is, or where it was when the
	// backlog had waited.
	t := max(m.pos, m.backlog)
	if m.fast > 0 && m.pos > m.fastAt {
		t -= min(m.pos-m.fastAt, m.fast)
	}
	if t > m.at {
		*m.clock = m.clock.Add(audio.Pipeline.Duration(t - m.at))
		m.at = t
		m.spk(t)
	}
	return n, nil
}

// sleeping says whether the device sleeps at sample k of far.
func (s simulation) sleeping(k int) bool {
	for _, a := range s.asleep {
		if k >= a[0] && k < a[1] {
			return true
		}
	}
	return false
}

// run returns the microphone's signal, the output and the source.
func (s simulation) run(t testing.TB) (mic, out []int16, src *Source) {
	t.Helper()
	mic = s.microphone()
	out, src = s.process(t, mic)
	return mic, out, src
}

// microphone is what the microphone hears: the echo, the near end and
// the room's noise.
func (s simulation) microphone() []int16 {
	echo := s.room.apply(s.far)
	noise := rand.New(rand.NewPCG(1, 2))
	mic := make([]int16, len(s.far))
	for i := range mic {
		v := echo[i] + noise.NormFloat64()*30 // about -60 dBFS of room noise
		if i < len(s.near) {
			v += float64(s.near[i])
		}
		mic[i] = int16(max(-32768, min(32767, math.Round(v))))
	}
	return mic
}

// process runs mic through a source whose reference hears s.far.
func (s simulation) process(t testing.TB, mic []int16) (out []int16, src *Source) {
	t.Helper()
	ref := NewReference()
	clock := ref.epoch
	played := 0
	spk := func(upTo int) {
		// The speaker hands over audio in 20 ms periods, speakerAt early.
		ahead := audio.Pipeline.Samples(s.speakerAt)
		for played < min(upTo+ahead, len(s.far)) {
			n := min(2*frame, len(s.far)-played)
			if !s.sleeping(played) {
				at := ref.epoch.Add(audio.Pipeline.Duration(played) - s.speakerAt)
				ref.Played(s.far[played:played+n], rate, at)
			}
			played += n
		}
	}
	m := &simMic{pcm: mic, backlog: s.backlog, fastAt: s.fastAt, fast: s.fast, clock: &clock, spk: spk}
	src, err := NewSource(m, ref, s.options)
	if err != nil {
		t.Fatal(err)
	}
	if s.engine != nil {
		src.c.close()
		src.c = s.engine
	}
	t.Cleanup(func() { src.Close() })
	src.now = func() time.Time { return clock }
	buf := make([]int16, 320)
	for {
		n, err := src.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return out, src
}

// erle is the echo return loss enhancement over the frames of [from, to)
// in which the microphone hears the echo (above -45 dBFS: the room's
// noise is at -60); NaN when there is none. Frames the source silenced
// while it measured the delay of a new run are left out: they say
// nothing of the canceller.
func erle(mic, out []int16, from, to int) float64 {
	to = min(to, len(mic), len(out))
	var em, eo float64
	for k := from; k+frame <= to; k += frame {
		if audio.RMS(mic[k:k+frame]) > -45 && !silenced(out[k:k+frame]) {
			em += energy(mic[k : k+frame])
			eo += energy(out[k : k+frame])
		}
	}
	if em == 0 {
		return math.NaN()
	}
	return 10 * math.Log10(em/max(eo, 1))
}

func energy(p []int16) float64 {
	var e float64
	for _, v := range p {
		e += float64(v) * float64(v)
	}
	return e
}

func silenced(p []int16) bool {
	for _, v := range p {
		if v != 0 {
			return false
		}
	}
	return true
}

func farSpeech(t testing.TB) []int16 {
	return speak(t, "Here is the weather for today. It will be sunny in the morning, with clouds later, "+
		"and a light wind from the west. Tomorrow looks much the same.", "en-us")
}

// With the agent alone speaking, the echo is taken out: 20 dB or more
// once converged, within the first second; and the delay is found.
func TestCancelsEchoOfARoom(t *testing.T) {
	far := farSpeech(t)
	sim := simulation{far: far, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond}
	mic, out, src := sim.run(t)
	// The echo's direct sound is room.delay after what played, which was
	// handed over 20 ms (320 samples) before it played.
	wantDelay(t, src, 2720)
	second := erle(mic, out, rate, 2*rate)
	rest := erle(mic, out, 2*rate, len(far))
	t.Logf("ERLE: second 2: %.1f dB; after: %.1f dB", second, rest)
	if second < 20 || rest < 20 {
		t.Errorf("ERLE %.1f dB in the second second, %.1f dB after; want >= 20 dB", second, rest)
	}
}

// wantDelay checks that src measured a delay of want samples (to the
// sample, give or take the measure's jitter).
func wantDelay(t *testing.T, src *Source, want int) {
	t.Helper()
	st := src.Stats()
	if !st.Measured {
		t.Fatal("the delay was never measured")
	}
	if d := audio.Pipeline.Samples(st.Delay); abs(d-want) > 8 {
		t.Errorf("delay %v (%d samples), want %d samples", st.Delay, d, want)
	}
}

// A microphone whose first read finds 400 ms waiting in its buffer (a
// loaded machine starting up) delivers it at once, ahead of the clock:
// it is placed anew once its count runs ahead, and the delay is found
// (placed by its first read, the echo would sit past the longest delay
// searched, and nothing would ever be taken out).
func TestMicrophoneBacklogIsPlacedAnew(t *testing.T) {
	far := append(make([]int16, rate), farSpeech(t)...) // a second before the reply
	sim := simulation{far: far, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond,
		backlog: audio.Pipeline.Samples(400 * time.Millisecond)}
	mic, out, src := sim.run(t)
	wantDelay(t, src, 2720)
	if e := erle(mic, out, 2*rate, len(far)); !(e >= 20) { // NaN: all silenced
		t.Errorf("ERLE %.1f dB after the first second of the reply; want >= 20 dB", e)
	}
}

// A microphone whose clock runs fast gets 25 ms ahead of the wall clock
// in the middle of a reply: it is placed back, and the delay shrinks by
// as much, the canceller going on undisturbed (not measured anew, with
// the microphone silenced meanwhile).
func TestFastMicrophoneIsMovedBackAligned(t *testing.T) {
	far := farSpeech(t)
	sim := simulation{far: far, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond,
		fastAt: 4 * rate, fast: 400}
	mic, out, src := sim.run(t)
	st := src.Stats()
	if d := audio.Pipeline.Samples(st.Delay); abs(d-(2720-400)) > 8 || st.Realigned != 0 {
		t.Errorf("delay %d samples, realigned %d times; want %d, 0", d, st.Realigned, 2720-400)
	}
	for k := 4 * rate; k+frame <= len(out); k += frame {
		if silenced(out[k:k+frame]) && !silenced(mic[k:k+frame]) {
			t.Fatalf("silenced at %v, after the move", audio.Pipeline.Duration(k))
		}
	}
	if e := erle(mic, out, 4*rate, len(far)); !(e >= 20) {
		t.Errorf("ERLE %.1f dB after the move; want >= 20 dB", e)
	}
}

// The user talking over the agent is kept: the near-end speech comes out
// at about its own level while the echo goes.
func TestKeepsTheUserOverTheEcho(t *testing.T) {
	far := farSpeech(t)
	near := speak(t, "Stop, please. I have another question.", "en-gb-x-rp+f3")
	at := 3 * rate // the user starts 3 s in
	pad := append(make([]int16, at), near...)
	sim := simulation{far: far, near: pad, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond}
	_, out, _ := sim.run(t)
	nearLevel := audio.RMS(near)
	outLevel := audio.RMS(out[at : at+len(near)])
	t.Logf("near-end %.1f dBFS alone, %.1f dBFS out of the canceller during double talk", nearLevel, outLevel)
	if outLevel < nearLevel-6 {
		t.Errorf("the user's speech lost %.1f dB in double talk; want at most 6", nearLevel-outLevel)
	}
}

// With headphones there is no echo to find. Before anything is known of
// the room, the start of the first reply is silenced while its echo is
// looked for (muteLimit past the longest delay); none is found, and from
// then on the microphone passes as it is: the user's voice over a later
// reply included, from its first syllable (nothing is silenced waiting
// for an echo that never comes).
func TestHeadphonesPassTheMicrophone(t *testing.T) {
	reply := speak(t, "Here is the weather for today. It will be sunny in the morning.", "en-us")
	near := speak(t, "Stop, please. I have another question.", "en-gb-x-rp+f3")
	gap := 2 * rate
	far := append(append(slices.Clone(reply), make([]int16, gap)...), reply...)
	second := len(reply) + gap
	pad := append(make([]int16, second+rate/5), near...) // 200 ms into the second reply
	sim := simulation{far: far, near: pad, room: room{delay: 2400, gain: 0}, speakerAt: 20 * time.Millisecond,
		asleep: [][2]int{{len(reply) + rate/2, second}}}
	mic, out, src := sim.run(t)
	if st := src.Stats(); st.Measured {
		t.Fatalf("an echo was measured where there is none: %+v", st)
	}
	// Give or take the speaker's 20 ms of handing over early and its
	// 20 ms chunks.
	first := echoStartOf(far)
	unknown := first + src.maxLag + muteLimit
	slack := 3 * frame
	for k := 0; k+frame <= len(out); k += frame {
		muted := k >= first+slack && k+frame <= unknown-slack
		if muted && !silenced(out[k:k+frame]) {
			t.Fatalf("frame at %v passed while the room was unknown", audio.Pipeline.Duration(k))
		}
		if k >= unknown+frame && !slices.Equal(mic[k:k+frame], out[k:k+frame]) {
			t.Fatalf("the microphone was altered at %v, after no echo was found", audio.Pipeline.Duration(k))
		}
	}
}

// soundStart is the first frame of pcm above level (dBFS); -1: none.
func soundStart(pcm []int16, level float64) int {
	for k := 0; k+frame <= len(pcm); k += frame {
		if audio.RMS(pcm[k:k+frame]) > level {
			return k
		}
	}
	return -1
}

// echoStartOf is where pcm first sounds for the reference (its activity
// level).
func echoStartOf(pcm []int16) int { return soundStart(pcm, activeLevel) }

// failingEngine is a canceller whose processing fails after a while;
// until then it takes everything out.
type failingEngine struct{ left, calls int }

func (e *failingEngine) process(mic, ref, out []int16) error {
	e.calls++
	if e.left--; e.left < 0 {
		return errors.New("processing failed")
	}
	clear(out)
	return nil
}
func (e *failingEngine) close() {}

// A canceller that fails is given up: Options.Failed hears it once, and
// the microphone goes on as it is (no frame lost, nothing silenced after).
func TestFailedCancellerPassesTheMicrophone(t *testing.T) {
	far := farSpeech(t)
	sim := simulation{far: far, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond}
	mic := sim.microphone()
	failed := make(chan error, 2)
	sim.options = &Options{Failed: func(err error) { failed <- err }}
	engine := &failingEngine{left: 100} // a second of aligned frames
	sim.engine = engine
	out, _ := sim.process(t, mic)
	if len(out) != len(mic) {
		t.Fatalf("%d samples out of %d", len(out), len(mic))
	}
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "processing failed") {
			t.Fatalf("Failed heard %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Failed never heard of the failure")
	}
	// It ran (its silence is in the output), then every frame after the
	// failure is the microphone's.
	ran := -1
	for k := 0; k+frame <= len(out); k += frame {
		if silenced(out[k:k+frame]) && !silenced(mic[k:k+frame]) {
			ran = k
		}
	}
	if ran < 0 || engine.calls != 101 {
		t.Fatalf("the canceller ran %d times (want 100 and the failure), last silenced frame %d", engine.calls, ran)
	}
	if after := ran + frame; !slices.Equal(mic[after:], out[after:]) {
		t.Fatalf("the microphone was altered after the canceller failed at %v", audio.Pipeline.Duration(after))
	}
	select {
	case <-failed:
		t.Fatal("Failed heard twice")
	case <-time.After(100 * time.Millisecond):
	}
}

// The echo's delay jumps by 70 ms in the middle of a reply (a device ran
// dry on a loaded machine and its buffering moved, as seen on the rig):
// the canceller follows the jump itself within tens of milliseconds, and
// the delay is measured again. (Measuring at once when the echo leaks
// was tried: realigning sooner disturbed the canceller as it followed,
// and let 60 ms through where this lets 10.)
func TestDelayJumpLeaksBriefly(t *testing.T) {
	far := farSpeech(t)
	before, after := room{delay: 2400, gain: 0.4}, room{delay: 2400 + 1120, gain: 0.4}
	jump := 4 * rate
	sim := simulation{far: far, room: before, speakerAt: 20 * time.Millisecond}
	mic := sim.microphone()
	sim.room = after
	copy(mic[jump:], sim.microphone()[jump:])
	out, src := sim.process(t, mic)
	leaked := 0
	for k := jump; k+frame <= jump+3*rate; k += frame { // the realignment included
		if audio.RMS(mic[k:k+frame]) > -45 && audio.RMS(out[k:k+frame]) > audio.RMS(mic[k:k+frame])-10 {
			leaked += frame
		}
	}
	t.Logf("after the jump: %v of echo let through (less than 10 dB taken out); delay %v, realigned %d",
		audio.Pipeline.Duration(leaked), src.Stats().Delay, src.Stats().Realigned)
	if d := audio.Pipeline.Samples(src.Stats().Delay); abs(d-(2720+1120)) > 8 {
		t.Errorf("delay %d samples after the jump, want %d", d, 2720+1120)
	}
	if leaked > audio.Pipeline.Samples(100*time.Millisecond) {
		t.Errorf("%v of echo let through after the jump; want at most 100 ms", audio.Pipeline.Duration(leaked))
	}
}

// Headphones at first, then the laptop's speakers: the room was found
// echoless, but once an echo is measured after all, the start of each
// reply is silenced again while its delay is measured.
func TestEchoFoundAfterAnEcholessStart(t *testing.T) {
	reply := speak(t, "Here is the weather for today. It will be sunny in the morning.", "en-us")
	gap := 2 * rate
	var far []int16
	var starts []int
	var asleep [][2]int
	for i := range 3 {
		if i > 0 {
			asleep = append(asleep, [2]int{len(far) + rate/2, len(far) + gap})
			far = append(far, make([]int16, gap)...)
		}
		starts = append(starts, len(far))
		far = append(far, reply...)
	}
	sim := simulation{far: far, room: room{delay: 2400, gain: 0}, speakerAt: 20 * time.Millisecond, asleep: asleep}
	mic := sim.microphone()
	sim.room.gain = 0.4 // the headphones come off before the second reply
	copy(mic[starts[1]-rate:], sim.microphone()[starts[1]-rate:])
	out, src := sim.process(t, mic)
	if !src.Stats().Measured {
		t.Fatal("the echo of the later replies was never measured")
	}
	third := starts[2] + echoStartOf(reply) + 3*frame
	if !silenced(out[third : third+frame]) {
		t.Fatalf("the third reply's start passed (%.1f dBFS) though an echo had been found", audio.RMS(out[third:third+frame]))
	}
}
