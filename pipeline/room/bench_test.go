package room

import (
	"fmt"
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

// BenchmarkFailureToSound: per room failure class, the moment it became
// knowable (the loop handled the event that made it so: the turn's end
// with an error reported, the state change, the SDK's callback, the
// watchdog's deadline) -> the first sound at the speaker (the earcon or
// the clip), median of 3 runs. The sessions are real: a livekit-server, an
// agents-js agent, the embedded gateway as its inference.
func BenchmarkFailureToSound(b *testing.B) {
	type scenario struct {
		name    string
		reasons []string // the alarms it measures
		run     func(b *testing.B, m *marks) *session
	}
	quota := func(rule string) func(b *testing.B, m *marks) *session {
		return func(b *testing.B, m *marks) *session {
			q, _ := localgw.ParseQuota(rule)
			w := newWorld(b, localgw.Options{STTScript: []string{"what time is it"}, Quotas: []localgw.QuotaRule{q}}, true)
			s := join(b, w, func(o *Options) { o.Trace = m.trace }, time.Second, "What time is it?", 10*time.Second)
			s.wait(b, time.Minute)
			return s
		}
	}
	scenarios := []scenario{
		{"llm_credits", []string{"agent_error", "no_answer"}, quota("llm:credits")},
		{"llm_rate_limit", []string{"agent_error"}, quota("llm:rate:count=1")},
		{"server_killed", []string{"reconnecting", "connection_lost"}, func(b *testing.B, m *marks) *session {
			w := newWorld(b, localgw.Options{STTScript: []string{"hello"}}, true)
			s := join(b, w, func(o *Options) { o.Trace = m.trace }, 30*time.Second)
			s.agentListening(b)
			w.srv.Stop()
			s.wait(b, 30*time.Second)
			return s
		}},
		{"agent_killed", []string{"not_heard", "agent_left"}, func(b *testing.B, m *marks) *session {
			w := newWorld(b, localgw.Options{STTScript: []string{"what time is it", "hello"}}, true)
			s := join(b, w, func(o *Options) { o.Trace, o.AnswerWait = m.trace, 4*time.Second },
				time.Second, "What time is it?", 5*time.Second, "Hello, are you there?", 40*time.Second)
			for deadline := time.Now().Add(30 * time.Second); len(m.get("first_agent_audio")) == 0 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			w.agent.Kill()
			s.wait(b, time.Minute)
			return s
		}},
	}
	// Each run is a sub-benchmark of its own, so that its server and agent
	// are gone before the next starts (two at once starve a 2-core
	// machine); the medians are the "median" sub-benchmark's metrics.
	for _, sc := range scenarios {
		b.Run(sc.name, func(b *testing.B) {
			took := map[string][]time.Duration{}
			for i := range 3 {
				b.Run(fmt.Sprintf("run%d", i+1), func(b *testing.B) {
					var m marks
					s := sc.run(b, &m)
					for _, reason := range sc.reasons {
						if at := m.get("alarm:" + reason); len(at) > 0 {
							if d, ok := s.firstLoudAfter(at[0]); ok {
								took[reason] = append(took[reason], d)
								b.ReportMetric(float64(d.Microseconds())/1000, "ms_"+reason+"_to_sound")
							}
						}
					}
				})
			}
			b.Run("median", func(b *testing.B) {
				for _, reason := range sc.reasons {
					if len(took[reason]) == 0 {
						b.Fatalf("no %s alarm followed by a sound", reason)
					}
					b.ReportMetric(float64(median(took[reason]).Microseconds())/1000, "ms_"+reason+"_to_sound")
					b.ReportMetric(float64(len(took[reason])), "runs_"+reason)
				}
			})
		})
	}
}
