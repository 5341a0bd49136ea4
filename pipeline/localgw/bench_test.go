package localgw

import (
	"context"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Gateway-side latency with zero injected delay, measured through the
// real clients over loopback (client work included, it is small).

func BenchmarkLLMFirstToken(b *testing.B) {
	_, cfg := start(b, Options{Speech: silentSpeech{}})
	llm, _ := gateway.NewLLM(cfg)
	msgs := []provider.Message{{Role: "user", Content: "hello"}}
	for b.Loop() {
		s, err := llm.Chat(context.Background(), msgs)
		if err != nil || !s.Next() {
			b.Fatal(err)
		}
		b.StopTimer()
		for s.Next() {
		}
		s.Close()
		b.StartTimer()
	}
}

func benchTTSFirstAudio(b *testing.B, opts Options) {
	_, cfg := start(b, opts)
	tts := newTTS(b, cfg)
	for b.Loop() {
		u, err := tts.Synthesize(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		u.Push("Hello there, how can I help?")
		u.Flush()
		if _, err := u.Recv(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for {
			if _, err := u.Recv(); err != nil {
				break
			}
		}
		u.Close()
		b.StartTimer()
	}
}

// BenchmarkTTSFirstAudioGateway is the gateway's own share: an engine that
// answers at once.
func BenchmarkTTSFirstAudioGateway(b *testing.B) {
	benchTTSFirstAudio(b, Options{Speech: silentSpeech{}})
}

// BenchmarkTTSFirstAudioEspeak includes espeak-ng starting and speaking
// the first 100 ms.
func BenchmarkTTSFirstAudioEspeak(b *testing.B) { benchTTSFirstAudio(b, Options{}) }

func BenchmarkSTTFinalAfterFinalize(b *testing.B) {
	_, cfg := start(b, Options{Speech: silentSpeech{}, STTScript: []string{"hello"}})
	stt, _ := gateway.NewSTT(cfg)
	s, err := stt.Stream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	pcm := speech(b, "hello")
	var total time.Duration
	for b.Loop() {
		b.StopTimer()
		if err := s.Write(pcm); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		s.Finalize()
		for {
			ev, err := s.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if ev.Type == provider.FinalTranscript {
				total += time.Since(t0)
			}
			if ev.Type == provider.Finalized {
				break
			}
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "ms/final")
}
