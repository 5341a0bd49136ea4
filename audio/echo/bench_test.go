package echo

import (
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
// server), the echo taken out (ERLE after convergence), how long the
// first reply took to converge, and a later reply's first second.
func BenchmarkRig(b *testing.B) {
	far := farSpeech(b)
	var db, worstDB, conv, worstConv float64
	worstDB = 1e9
	for range b.N {
		raw, out, _ := rigRun(b, far)
		start := echoStart(raw)
		if start < 0 {
			b.Fatal("no echo reached the microphone")
		}
		c, ok := convergence(raw, out, start)
		if !ok {
			b.Fatal("never converged")
		}
		e := erle(raw, out, start+int(c.Seconds()*rate), len(raw))
		db += e
		worstDB = min(worstDB, e)
		conv += float64(c.Milliseconds())
		worstConv = max(worstConv, float64(c.Milliseconds()))
	}
	b.ReportMetric(db/float64(b.N), "ERLE_dB")
	b.ReportMetric(worstDB, "worst_ERLE_dB")
	b.ReportMetric(conv/float64(b.N), "converge_ms")
	b.ReportMetric(worstConv, "worst_converge_ms")
}
