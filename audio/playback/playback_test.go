package playback

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
)

var server *pulsetest.Server

// TestMain runs every test against a private PulseAudio with virtual
// devices; if it cannot start, the tests fail (they never skip).
func TestMain(m *testing.M) { os.Exit(pulsetest.RunTests(m, &server)) }

const rate = pulsetest.SpeakerRate

func tone(freq float64, d time.Duration) []int16 {
	n := int(d.Seconds() * rate)
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(16000 * math.Sin(2*math.Pi*freq*float64(i)/rate))
	}
	return s
}

// segment is a run of 10 ms windows: loud with a dominant frequency, or
// silent (freq 0).
type segment struct {
	start, end int // sample indexes
	freq       float64
}

// segments splits a recording into loud and silent runs, estimating each
// loud window's frequency from its zero crossings.
func segments(x []int16) []segment {
	const win = rate / 100
	var segs []segment
	for i := 0; i+win <= len(x); i += win {
		w := x[i : i+win]
		var f float64
		if audio.RMS(w) > -40 {
			crossings := 0
			for k := 1; k < len(w); k++ {
				if (w[k-1] < 0) != (w[k] < 0) {
					crossings++
				}
			}
			f = float64(crossings) / 2 * 100
			// Round to the nearest 250 Hz band so one tone is one segment.
			f = math.Round(f/250) * 250
		}
		if n := len(segs); n > 0 && segs[n-1].freq == f {
			segs[n-1].end = i + win
			continue
		}
		segs = append(segs, segment{start: i, end: i + win, freq: f})
	}
	return segs
}

// noGap fails t when a 1 ms window of played (a tone) loses its level.
func noGap(t testing.TB, played []int16) {
	t.Helper()
	for i := 0; i+rate/1000 <= len(played); i += rate / 1000 {
		if lv := audio.RMS(played[i : i+rate/1000]); lv < -12 {
			t.Fatalf("gap at %.3f s: level %.1f dBFS", float64(i)/rate, lv)
		}
	}
}

func record(t testing.TB) *pulsetest.Recording {
	t.Helper()
	rec, err := server.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// settle lets whatever an earlier test left in the sound server play out,
// and returns the recording's length: analyse only what comes after it.
func settle(rec *pulsetest.Recording) int {
	time.Sleep(250 * time.Millisecond)
	return len(rec.Samples())
}

func openSpeaker(t testing.TB) *Speaker {
	t.Helper()
	s, err := Open(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPlaysWAVWithRightFrequencyAndDuration(t *testing.T) {
	// The clip goes through a real WAV file, as --error-audio will.
	path := filepath.Join(t.TempDir(), "tone.wav")
	w, err := audio.CreateWAV(path, audio.Format{SampleRate: rate, Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteSamples(tone(1000, time.Second))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	clip, f, err := audio.ReadWAVFile(path)
	if err != nil {
		t.Fatal(err)
	}
	spk := openSpeaker(t)
	if spk.Format() != f {
		t.Fatalf("speaker format %v, clip %v", spk.Format(), f)
	}
	rec := record(t)
	mark := settle(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := spk.Write(ctx, clip); err != nil {
		t.Fatal(err)
	}
	if err := spk.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond) // parec's own latency
	got, err := rec.Stop()
	if err != nil {
		t.Fatal(err)
	}
	got = got[mark:]
	first, last := pulsetest.LoudSpan(got, 2000)
	if first < 0 {
		t.Fatalf("nothing audible in %d recorded samples", len(got))
	}
	// The span runs between the first and the last sample above the
	// threshold, which sit less than a quarter period inside the tone.
	dur := float64(last-first+1) / rate
	if math.Abs(dur-1) > 0.01 {
		t.Errorf("played %.4f s, want 1 s within 1%%", dur)
	}
	played := got[first : last+1]
	crossings := 0
	for k := 1; k < len(played); k++ {
		if (played[k-1] < 0) != (played[k] < 0) {
			crossings++
		}
	}
	if freq := float64(crossings) / 2 / dur; math.Abs(freq-1000) > 10 {
		t.Errorf("frequency %.1f Hz, want 1000 within 1%%", freq)
	}
	noGap(t, played)
	if u := spk.Underruns(); u != 0 {
		t.Errorf("%d underruns while the whole clip was queued", u)
	}
}

func TestFlushSilencesQueuedAudio(t *testing.T) {
	spk := openSpeaker(t)
	rec := record(t)
	mark := settle(rec)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Queue 5 s of 500 Hz, flush after half a second, wait, then a 2 kHz
	// marker: the recording must read 500 Hz, silence, 2 kHz, silence.
	if _, err := spk.Write(ctx, tone(500, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	spk.Flush()
	if q := spk.Queued(); q != 0 {
		t.Errorf("after Flush %v still queued", q)
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := spk.Write(ctx, tone(2000, 200*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := spk.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	got, _ := rec.Stop()
	got = got[mark:]

	// Windows straddling an edge hold part tone, part silence and read as
	// odd frequencies: only runs of 30 ms or more count.
	var runs []segment
	for _, s := range segments(got) {
		if s.end-s.start < 3*rate/100 {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].freq == s.freq {
			runs[n-1].end = s.end
			continue
		}
		runs = append(runs, s)
	}
	// Leading silence before the first tone is fine; drop it.
	for len(runs) > 0 && runs[0].freq == 0 {
		runs = runs[1:]
	}
	var order []float64
	for _, r := range runs {
		order = append(order, r.freq)
	}
	want := []float64{500, 0, 2000, 0}
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("recording reads %v (Hz, 0 = silence), want %v: flushed audio must not come back", order, want)
	}
	// Of the 5 s queued, what was heard is what played before Flush: far
	// less than the queue (the exact figure is a benchmark, not a test).
	if heard := float64(runs[0].end-runs[0].start) / rate; heard > 2.5 {
		t.Errorf("heard %.2f s of the 5 s queued before the flush took effect", heard)
	}
	if gap := float64(runs[1].end-runs[1].start) / rate; gap < 0.3 {
		t.Errorf("silence between flush and marker %.2f s, want about 0.5 s", gap)
	}
}

func TestUnderrunsCountGapsInsideAStream(t *testing.T) {
	spk := openSpeaker(t)
	ctx := context.Background()
	before := spk.Underruns()
	spk.Write(ctx, tone(440, 50*time.Millisecond))
	time.Sleep(300 * time.Millisecond) // the queue runs dry mid-stream
	spk.Write(ctx, tone(440, 50*time.Millisecond))
	if err := spk.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := spk.Underruns() - before; got != 1 {
		t.Fatalf("underruns = %d, want 1", got)
	}
	// A new stream after Drain is not a gap.
	time.Sleep(100 * time.Millisecond)
	spk.Write(ctx, tone(440, 50*time.Millisecond))
	spk.Drain(ctx)
	if got := spk.Underruns() - before; got != 1 {
		t.Fatalf("underruns after a fresh stream = %d, want still 1", got)
	}
}

func TestDrainHonoursContext(t *testing.T) {
	spk := openSpeaker(t)
	spk.Write(context.Background(), tone(440, 3*time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := spk.Drain(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Drain with 3 s queued and a 100 ms deadline = %v", err)
	}
	spk.Flush()
}

func TestALSAName(t *testing.T) {
	for in, want := range map[string]string{
		"HDA Intel PCH: ALC3246 Analog (hw:0,0)": "plughw:0,0",
		"USB Audio: - (hw:2,1)":                  "plughw:2,1",
		"pulse":                                  "pulse",
		"virtual_speaker":                        "virtual_speaker",
	} {
		if got := ALSAName(in); got != want {
			t.Errorf("ALSAName(%q) = %q, want %q", in, got, want)
		}
	}
}

// BenchmarkPlaybackLatency: Write -> the first sample at the virtual
// speaker's monitor, by this process's clock (parec's 20 ms included).
// Suspended: 1 s after the last sound (the device sleeps after 150 ms of
// silence), the usual state when a reply or a fallback starts. Running:
// 120 ms after a 50 ms sound was written, the device still playing.
func BenchmarkPlaybackLatency(b *testing.B) {
	// suspended: the usual state when a sound starts; running: 120 ms
	// after another sound.
	for _, c := range []struct {
		name string
		warm bool
	}{{"suspended", false}, {"running", true}} {
		b.Run(c.name, func(b *testing.B) {
			spk := openSpeaker(b)
			burst := tone(1000, 50*time.Millisecond)
			var lat []float64
			for b.Loop() {
				rec := record(b)
				time.Sleep(time.Second)
				if c.warm {
					spk.Write(context.Background(), burst) // wakes the device
					time.Sleep(120 * time.Millisecond)
				}
				start := time.Now()
				spk.Write(context.Background(), burst)
				lat = append(lat, heardAfter(b, rec, start))
				spk.Drain(context.Background())
				rec.Stop()
			}
			sort.Float64s(lat)
			b.ReportMetric(lat[len(lat)/2], "ms/median")
		})
	}
}

// heardAfter waits for a sound that starts at the monitor after start and
// returns how long after start it came, in ms. Times of later samples
// count from the first sound: parec delivers a continuous stream.
func heardAfter(b *testing.B, rec *pulsetest.Recording, start time.Time) float64 {
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		first, ok := rec.FirstSound()
		if !ok {
			continue
		}
		pcm := rec.Samples()
		firstAt := -1
		quiet := 0 // samples below the threshold since the last loud one
		for i, v := range pcm {
			loud := v > 2000 || v < -2000
			if !loud {
				quiet++
				continue
			}
			if firstAt < 0 {
				firstAt = i
			}
			at := first.Add(time.Duration(i-firstAt) * time.Second / pulsetest.SpeakerRate)
			if at.After(start) && (i == firstAt || quiet > pulsetest.SpeakerRate/100) { // the onset of a new sound
				return float64(at.Sub(start).Microseconds()) / 1000
			}
			quiet = 0
		}
	}
	b.Fatal("the burst never reached the speaker")
	return 0
}

// BenchmarkUnderrunsUnderLoad plays a 60 s tone while two busy processes
// (one per core of the CI machines) compete for the CPU, and counts the
// gaps heard at the speaker's monitor (5 ms windows of silence inside the
// tone) and the underruns the speaker itself saw (its queue ran dry). The
// floor is pacat playing the same tone, with the device buffer's latency,
// under the same load.
func BenchmarkUnderrunsUnderLoad(b *testing.B) {
	b.Run("speaker", func(b *testing.B) {
		for b.Loop() {
			spk := openSpeaker(b)
			gaps, heard := underLoad(b, func(ctx context.Context, pcm []int16) error {
				if _, err := spk.Write(ctx, pcm); err != nil {
					return err
				}
				return spk.Drain(ctx)
			})
			b.ReportMetric(float64(gaps), "gaps_heard")
			b.ReportMetric(float64(spk.Underruns()), "underruns")
			b.ReportMetric(heard, "s_heard")
		}
	})
	b.Run("pacat_floor", func(b *testing.B) {
		for b.Loop() {
			gaps, heard := underLoad(b, func(ctx context.Context, pcm []int16) error {
				cmd := exec.CommandContext(ctx, "pacat", "--playback", "--device=spk", "--latency-msec=80",
					"--format=s16le", "--rate=48000", "--channels=1", "--raw")
				buf := make([]byte, 2*len(pcm))
				for i, v := range pcm {
					buf[2*i], buf[2*i+1] = byte(v), byte(uint16(v)>>8)
				}
				cmd.Stdin = bytes.NewReader(buf)
				return cmd.Run()
			})
			b.ReportMetric(float64(gaps), "gaps_heard")
			b.ReportMetric(heard, "s_heard")
		}
	})
}

// underLoad plays a 60 s tone with play while two busy processes run,
// and returns the gaps heard in it and how long it was heard.
func underLoad(b *testing.B, play func(context.Context, []int16) error) (int, float64) {
	var hogs []*exec.Cmd
	for range 2 {
		hog := exec.Command("sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			b.Fatal(err)
		}
		hogs = append(hogs, hog)
	}
	rec := record(b)
	mark := settle(rec)
	const length = 60 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), length+30*time.Second)
	err := play(ctx, tone(1000, length))
	cancel()
	for _, hog := range hogs {
		hog.Process.Kill()
		hog.Wait()
	}
	if err != nil {
		b.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	got, _ := rec.Stop()
	got = got[mark:]
	first, last := pulsetest.LoudSpan(got, 2000)
	if first < 0 {
		b.Fatal("nothing was heard")
	}
	const win = rate / 200 // 5 ms
	gaps, inGap := 0, false
	for i := first; i+win <= last; i += win {
		silent := audio.RMS(got[i:i+win]) < -30
		if silent && !inGap {
			gaps++
		}
		inGap = silent
	}
	return gaps, float64(last-first) / rate
}

// A stream written in pieces faster than it plays (as TTS replies and
// fallback clips come) to a sleeping device plays without a gap after its
// first piece: the device waits up to prebuffer for the next pieces, to
// fill the 180 ms it takes at once when it wakes.
func TestStreamWokenByItsFirstPieceHasNoGap(t *testing.T) {
	for _, first := range []time.Duration{60 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(first.String(), func(t *testing.T) {
			wokenWithoutGap(t, func(ctx context.Context, spk *Speaker, pcm []int16) {
				pieces := [][]int16{pcm[:spk.Format().Samples(first)]}
				for rest := pcm[len(pieces[0]):]; len(rest) > 0; {
					n := min(len(rest), spk.Format().Samples(100*time.Millisecond))
					pieces, rest = append(pieces, rest[:n]), rest[n:]
				}
				before := spk.Underruns()
				for _, p := range pieces {
					if _, err := spk.Write(ctx, p); err != nil {
						t.Fatal(err)
					}
				}
				if err := spk.Drain(ctx); err != nil {
					t.Fatal(err)
				}
				if u := spk.Underruns() - before; u != 0 {
					t.Errorf("%d underruns", u)
				}
			})
		})
	}
}

// A live stream (room and console mode: 20 ms frames at their real pace)
// that wakes a sleeping device is heard whole: woken by its first frame,
// the device played it, then silence until the stream was liveLead ahead.
func TestLiveStreamWokenByItsFirstFrameHasNoGap(t *testing.T) {
	wokenWithoutGap(t, func(ctx context.Context, spk *Speaker, pcm []int16) {
		frame := spk.Format().Samples(20 * time.Millisecond)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < len(pcm); i += frame {
			if _, err := spk.Write(ctx, pcm[i:min(i+frame, len(pcm))]); err != nil {
				t.Fatal(err)
			}
			<-tick.C
		}
		if err := spk.Drain(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// wokenWithoutGap lets a new speaker fall asleep, has play write a
// second's tone to it and wait until it has played, and fails t if the
// monitor heard nothing or a gap in the tone.
func wokenWithoutGap(t *testing.T, play func(ctx context.Context, spk *Speaker, pcm []int16)) {
	t.Helper()
	spk := openSpeaker(t)
	rec := record(t)
	mark := settle(rec)
	time.Sleep(idleAfter + 2*idleTick) // asleep
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	play(ctx, spk, tone(1000, time.Second))
	time.Sleep(150 * time.Millisecond) // parec's own latency
	got, _ := rec.Stop()
	got = got[mark:]
	firstAt, lastAt := pulsetest.LoudSpan(got, 2000)
	if firstAt < 0 {
		t.Fatal("nothing heard")
	}
	noGap(t, got[firstAt:lastAt+1])
}
