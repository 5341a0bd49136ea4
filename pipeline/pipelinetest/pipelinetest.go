// Package pipelinetest has what tests of providers and conversations share:
// quota bodies in the gateway's exact shape, helpers for in-process
// servers as strict as the real ones (strict.go), and scripted fakes of
// the providers and of a microphone (fakes.go).
package pipelinetest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// Hints the gateway sends (BACKGROUND.md).
const (
	CreditsHint = "Wait for the next billing cycle or upgrade your plan."
	RateHint    = "LLM request rate limit reached. Reduce request rate or upgrade your plan."
)

// QuotaBody is a gateway inference_quota_exceeded body. Terminal
// categories get the credits hint, the others the rate-limit hint.
func QuotaBody(quotaType, category string) string {
	hint := RateHint
	switch category {
	case "MaxGatewayCredits", "MaxBargeInRequests", "MaxEotRequests":
		hint = CreditsHint
	}
	b, _ := json.Marshal(map[string]string{
		"type": "inference_quota_exceeded", "quota_type": quotaType, "category": category,
		"error":           fmt.Sprintf("%s quota exceeded, category: %s, remaining_limit: 0", quotaType, category),
		"hint":            hint,
		"remaining_limit": "0", "current_usage": "55", "status": "QuotaStatusExceeded",
		"free_tier": "false", "documentation_url": "https://livekit.com/pricing",
	})
	return string(b)
}

// Counter counts requests a handler saw.
type Counter struct{ n atomic.Int32 }

func (c *Counter) Add() int  { return int(c.n.Add(1)) }
func (c *Counter) Load() int { return int(c.n.Load()) }
func (c *Counter) Reset()    { c.n.Store(0) }

// Refuse answers status with a JSON body and the gateway's usage headers.
func Refuse(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Request-Id", "req_123")
	w.Header().Set("X-LiveKit-Inference-Credits-Limit", "1000")
	w.Header().Set("X-LiveKit-Inference-Credits-Used", "1000")
	w.WriteHeader(status)
	fmt.Fprint(w, body)
}

// SSE writes one event per data string and flushes, as a streaming server does.
func SSE(t testing.TB, w http.ResponseWriter, data ...string) {
	t.Helper()
	for _, d := range data {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", d); err != nil {
			return // the client went away; the test sees it on its side
		}
		w.(http.Flusher).Flush()
	}
}

// Delta is a chat-completion chunk carrying text.
func Delta(text string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "test",
		"choices": []any{map[string]any{"index": 0, "delta": map[string]string{"content": text}, "finish_reason": nil}},
	})
	return string(b)
}

// Say speaks sentences as one utterance through tts and returns all its
// audio (what a test compares; the session streams it instead).
func Say(ctx context.Context, tts provider.TTS, sentences ...string) ([]int16, error) {
	u, err := tts.Synthesize(ctx)
	if err != nil {
		return nil, err
	}
	defer u.Close()
	for _, s := range sentences {
		if err := u.Push(s); err != nil {
			return nil, err
		}
	}
	if err := u.Flush(); err != nil {
		return nil, err
	}
	var out []int16
	for {
		pcm, err := u.Recv()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, pcm...)
	}
}

// BuildTags are the build tags this test binary was built with (make
// passes the echo canceller's, scripts/aec-tags.sh), comma-separated: the
// program a test builds must be the one make builds.
func BuildTags() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "-tags" {
				return s.Value
			}
		}
	}
	return ""
}

// Binary builds voicetui into a temporary directory, as a user runs it,
// for the tests of other packages that drive the program.
func Binary(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "voicetui")
	root, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-tags", BuildTags(), "-o", bin, "./cmd/voicetui")
	build.Dir = filepath.Dir(strings.TrimSpace(string(root)))
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
