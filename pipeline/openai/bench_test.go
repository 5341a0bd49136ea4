package openai

import (
	"runtime"
	"strings"
	"testing"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

// BenchmarkChatStreamPerToken decodes a 100-token reply (SSE framing,
// chunk JSON, typed error checks) and reports the cost per token.
func BenchmarkChatStreamPerToken(b *testing.B) {
	const tokens = 100
	var sse strings.Builder
	for i := range tokens {
		sse.WriteString("data: " + pipelinetest.Delta(string(rune('a'+i%26))+" ") + "\n\n")
	}
	sse.WriteString("data: [DONE]\n\n")
	data := []byte(sse.String())
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for b.Loop() {
		if _, err := chatEvents(data); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N*tokens), "allocs/token")
}
