package echo

import (
	"github.com/voicetui/voicetui/audio"

	"testing"
	"time"
)

// BenchmarkCancel: the canceller's CPU per 20 ms of microphone audio
// (two 10 ms frames, the delay measures included), with the agent
// speaking throughout (the dearest case: measures run while it plays).
func BenchmarkCancel(b *testing.B) {
	far := farSpeech(b)
	sim := simulation{far: far, room: room{delay: 2400, gain: 0.4}, speakerAt: 20 * time.Millisecond}
	mic := sim.microphone()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		sim.process(b, mic)
	}
	per := time.Since(start) / time.Duration(b.N) / time.Duration(len(far)/(2*frame))
	b.ReportMetric(float64(per.Nanoseconds()), "ns/20ms")
	b.ReportMetric(100*per.Seconds()/0.02, "%core")
}

// BenchmarkRig: on the rig (real devices, the echo through the sound
// server), a first reply (nothing known of the room yet): how long the
// microphone is silenced at its start while the delay is measured, the
// echo taken out over its first second (silenced frames left out: what
// does come through), and after that.
func BenchmarkRig(b *testing.B) {
	far := farSpeech(b)
	var first, after, worst, muted, worstMuted float64
	worst = 1e9
	for range b.N {
		raw, out, _ := rigRun(b, far)
		start := echoStart(raw)
		if start < 0 {
			b.Fatal("no echo reached the microphone")
		}
		m := 0
		for k := start; k+frame <= len(out) && silenced(out[k:k+frame]); k += frame {
			m += frame
		}
		e1 := erle(raw, out, start, start+rate)
		e := erle(raw, out, start+rate, len(raw))
		first += e1
		after += e
		worst = min(worst, e1)
		ms := float64(audio.Pipeline.Duration(m).Milliseconds())
		muted += ms
		worstMuted = max(worstMuted, ms)
	}
	n := float64(b.N)
	b.ReportMetric(first/n, "first_second_ERLE_dB")
	b.ReportMetric(after/n, "ERLE_dB")
	b.ReportMetric(worst, "worst_first_second_ERLE_dB")
	b.ReportMetric(muted/n, "muted_ms")
	b.ReportMetric(worstMuted, "worst_muted_ms")
}
