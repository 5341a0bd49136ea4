package room

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw"
)

// Benchmarks through a real room, measured at the speaker (the clock that
// plays what the conversation writes, in real time) against the instants
// the conversation traces. The gateway adds no latency of its own (no
// delay between words; espeak-ng speaks at once).

// marks collects traced instants.
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

// firstLoudAfter is the first loud 20 ms at the speaker after at.
func (s *session) firstLoudAfter(at time.Time) (time.Duration, bool) {
	s.spk.mu.Lock()
	defer s.spk.mu.Unlock()
	for _, l := range s.spk.loud {
		if t := s.spk.start.Add(l); t.After(at) {
			return t.Sub(at), true
		}
	}
	return 0, false
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// BenchmarkVoiceToVoice: the end of the user's speech (fed from a WAV)
// -> the first sound of the agent's reply at the speaker, per turn.
func BenchmarkVoiceToVoice(b *testing.B) {
	var all []time.Duration
	for range b.N {
		func() {
			w := newWorld(b, localgw.Options{STTScript: []string{"what time is it", "hello", "help"}}, true)
			var m marks
			s := join(b, w, func(o *Options) { o.Trace = m.trace },
				time.Second, "What time is it?", 4*time.Second, "Hello.", 4*time.Second, "Help me.", 5*time.Second)
			if err := s.wait(b, time.Minute); err != nil {
				b.Fatal(err)
			}
			for _, end := range m.get("speech_end") {
				if d, ok := s.firstLoudAfter(end); ok && d < 5*time.Second {
					all = append(all, d)
				}
			}
		}()
	}
	b.ReportMetric(float64(median(all).Milliseconds()), "ms_voice_to_voice_median")
	b.ReportMetric(float64(len(all)), "turns")
}

// BenchmarkFailureToFallback: the agent's failure noticed (its LLM credits
// are gone; the watchdog's alarm) -> the first sound of the local clip at
// the speaker.
func BenchmarkFailureToFallback(b *testing.B) {
	var all []time.Duration
	for range b.N {
		func() {
			q, _ := localgw.ParseQuota("llm:credits")
			w := newWorld(b, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}}, true)
			var m marks
			s := join(b, w, func(o *Options) { o.Trace = m.trace }, time.Second, "What time is it?", 12*time.Second)
			s.wait(b, time.Minute)
			if alarms := m.get("alarm"); len(alarms) > 0 {
				if d, ok := s.firstLoudAfter(alarms[0]); ok {
					all = append(all, d)
				}
			}
		}()
	}
	b.ReportMetric(float64(median(all).Microseconds())/1000, "ms_alarm_to_sound_median")
}
