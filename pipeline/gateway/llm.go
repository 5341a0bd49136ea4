package gateway

import (
	"context"
	"net/http"

	"github.com/voicetui/voicetui/pipeline"
	"github.com/voicetui/voicetui/pipeline/openai"
)

// LLM streams chat completions from the gateway's OpenAI-compatible
// endpoint, with a fresh token per request.
type LLM struct {
	chat openai.Chat
}

// NewLLM checks cfg and returns the gateway's LLM.
func NewLLM(cfg Config) (*LLM, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return &LLM{chat: openai.Chat{
		BaseURL:   cfg.URL,
		Model:     cfg.LLMModel,
		Client:    cfg.client(),
		Retry:     cfg.Retry,
		Authorize: func(r *http.Request) error { return cfg.authorize(r.Header) },
	}}, nil
}

// Chat implements pipeline.LLM.
func (l *LLM) Chat(ctx context.Context, messages []pipeline.Message) (pipeline.TextStream, error) {
	return l.chat.Chat(ctx, messages)
}
