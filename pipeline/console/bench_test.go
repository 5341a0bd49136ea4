package console

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw"
)

// Benchmarks with a real agents-js agent in console mode, measured at the
// speaker (the clock that plays what the conversation writes, in real
// time), as room mode's are: the gateway adds no latency of its own (no
// delay between words; espeak-ng speaks at once).

type marks struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (m *marks) trace(mark string, at time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.at == nil {
		m.at = map[string][]time.Time{}
	}
	m.at[mark] = append(m.at[mark], at)
}

func (m *marks) get(mark string) []time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.at[mark])
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkVoiceToVoice: the end of the user's speech (fed from a WAV)
// -> the first sound of the agent's reply at the speaker, per turn
// (pipeline/room's benchmark of the same name, for the room).
func BenchmarkVoiceToVoice(b *testing.B) {
	var all []time.Duration
	for range b.N {
		func() {
			g := newGateway(b, localgw.Options{STTScript: []string{"what time is it", "hello", "help"}})
			var m marks
			s := talk(b, g, func(o *Options) { o.Trace = m.trace },
				time.Second, "What time is it?", 4*time.Second, "Hello.", 4*time.Second, "Help me.", 5*time.Second)
			if err := s.wait(b, time.Minute); err != nil {
				b.Fatal(err)
			}
			for _, end := range m.get("speech_end") {
				if d, ok := s.spk.firstLoudAfter(end); ok && d < 5*time.Second {
					all = append(all, d)
				}
			}
		}()
	}
	b.ReportMetric(float64(median(all).Milliseconds()), "ms_voice_to_voice_median")
	b.ReportMetric(float64(len(all)), "turns")
}

// BenchmarkFirstRefusalToClip: the gateway answers the agent's first LLM
// request with a terminal 429 -> the first sound of the quota clip at the
// speaker, median of 3 runs (the agent itself would retry for 4 s and go
// quiet).
func BenchmarkFirstRefusalToClip(b *testing.B) {
	for range b.N {
		var took []time.Duration
		for range 3 {
			func() {
				q, _ := localgw.ParseQuota("llm:credits")
				g := newGateway(b, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}})
				s := talk(b, g, nil, time.Second, "What time is it?", 8*time.Second)
				s.wait(b, time.Minute)
				first := g.firstRefusal()
				d, ok := s.spk.firstLoudAfter(first)
				if first.IsZero() || !ok {
					b.Fatalf("no refusal (%v) or no clip:\n%s", first, dump(s.rec))
				}
				took = append(took, d)
			}()
		}
		b.ReportMetric(float64(median(took).Microseconds())/1000, "ms_first_429_to_clip_median")
	}
}
