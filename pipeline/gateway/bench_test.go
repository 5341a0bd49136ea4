package gateway

import (
	"context"
	"net/http"
	"testing"

	"github.com/coder/websocket"
)

// BenchmarkSTTSendChunk is the client's cost of one 50 ms input_audio
// message (PCM encoding, base64, JSON framing, WebSocket write) to a real
// in-process server that discards it.
func BenchmarkSTTSendChunk(b *testing.B) {
	cfg := fakeGateway(b, wsHandler(b, func(ctx context.Context, c *websocket.Conn, r *http.Request) { drain(ctx, c) }))
	st, err := NewSTT(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s, err := st.Stream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	chunk := ramp(ChunkSamples)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
}
