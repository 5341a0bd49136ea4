package session

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/localgw"
)

// marks collects Trace instants.
type marks struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (m *marks) add(mark string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at = map[string][]time.Time{}
	}
	m.at[mark] = append(m.at[mark], at)
}

// median of the gaps from mark a to mark b, turn by turn, in ms.
func (m *marks) median(a, b string) float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var d []float64
	for i := range min(len(m.at[a]), len(m.at[b])) {
		d = append(d, float64(m.at[b][i].Sub(m.at[a][i]).Microseconds())/1000)
	}
	if len(d) == 0 {
		return -1
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkClientLatency holds a five-turn conversation with the embedded
// gateway (zero injected latency) and reports the client's own share of
// each stage, median over the turns.
func BenchmarkClientLatency(b *testing.B) {
	var parts []any
	var script []string
	for range 5 {
		parts = append(parts, time.Second, "What time is it?", 2500*time.Millisecond)
		script = append(script, "what time is it")
	}
	wav := speechWAV(b, parts...)
	for b.Loop() {
		var m marks
		if _, err := inProcess(b, wav, localgw.Options{STTScript: script, TokenDelay: -1},
			func(o *Options) { o.Trace = m.add }); err != nil {
			b.Fatal(err)
		}
		eou := m.median("speech_end", "finalize_sent")
		toLLM := m.median("finalized", "llm_request")
		toTTS := m.median("first_sentence", "tts_push")
		toSpk := m.median("first_audio", "first_write")
		b.ReportMetric(eou, "ms_eou_to_finalize")
		b.ReportMetric(toLLM, "ms_final_to_llm")
		b.ReportMetric(toTTS, "ms_sentence_to_tts")
		b.ReportMetric(toSpk, "ms_audio_to_device")
		b.ReportMetric(toLLM+toTTS+toSpk, "ms_client_total_after_eou")
		b.ReportMetric(m.median("speech_end", "first_write"), "ms_e2e")
	}
}

// firstWrite notes the first Write after armed.
type firstWrite struct {
	audio.Sink
	mu    sync.Mutex
	armed bool
	at    time.Time
}

func (f *firstWrite) Write(ctx context.Context, p []int16) (int, error) {
	f.mu.Lock()
	if f.armed && f.at.IsZero() {
		f.at = time.Now()
	}
	f.mu.Unlock()
	return f.Sink.Write(ctx, p)
}

// BenchmarkQuotaSignal: a terminal 429 received -> the first sample of the
// fallback clip written to the device.
func BenchmarkQuotaSignal(b *testing.B) {
	wav := speechWAV(b, time.Second, "What time is it?", time.Second)
	q, _ := localgw.ParseQuota("llm:credits")
	var total time.Duration
	for b.Loop() {
		var fw *firstWrite
		var errAt time.Time
		inProcess(b, wav, localgw.Options{STTScript: []string{"x"}, Quotas: []localgw.QuotaRule{q}}, func(o *Options) {
			fw = &firstWrite{Sink: o.Speaker}
			o.Speaker = fw
			o.Trace = func(mark string, at time.Time) {
				if mark == "terminal_error" {
					fw.mu.Lock()
					fw.armed, errAt = true, at
					fw.mu.Unlock()
				}
			}
		})
		if fw.at.IsZero() {
			b.Fatal("no fallback sample reached the device")
		}
		total += fw.at.Sub(errAt)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms_429_to_fallback_sample")
}

// BenchmarkFailureSignal: a failure the session goes on after is known
// (the turn's error returned after its retries; the finalize watchdog
// fired) -> the first sample of the earcon written to the device.
func BenchmarkFailureSignal(b *testing.B) {
	for _, c := range []struct{ name, fault string }{
		{"turn_failed", "llm:5xx"},
		{"finalize_watchdog", "stt:delay=8s"},
	} {
		b.Run(c.name, func(b *testing.B) {
			wav := speechWAV(b, time.Second, "What time is it?", 4*time.Second)
			var total time.Duration
			for b.Loop() {
				var fw *firstWrite
				var knownAt time.Time
				local := rules(b, nil, []string{c.fault})
				local.STTScript = []string{"what time is it"}
				inProcess(b, wav, local, func(o *Options) {
					fw = &firstWrite{Sink: o.Speaker}
					o.Speaker = fw
					o.Trace = func(mark string, at time.Time) {
						fw.mu.Lock()
						defer fw.mu.Unlock()
						if mark == "failure_known" && !fw.armed {
							fw.armed, knownAt = true, at
						}
					}
				})
				if fw.at.IsZero() {
					b.Fatal("no earcon sample reached the device")
				}
				total += fw.at.Sub(knownAt)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms_known_to_earcon_sample")
		})
	}
}
