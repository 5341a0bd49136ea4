package gateway

import (
	"context"
	"net/http"

	"github.com/voicetui/voicetui/pipeline/openai"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// LLM streams chat completions from the gateway's OpenAI-compatible
// endpoint, with a fresh token per request.
type LLM struct {
	chat openai.Chat
}

// NewLLM checks cfg and returns the gateway's LLM.
func NewLLM(cfg Config) (*LLM, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &LLM{chat: openai.Chat{
		BaseURL:   cfg.URL,
		Model:     cfg.LLMModel,
		Client:    cfg.client(),
		Retry:     cfg.Retry,
		Authorize: func(r *http.Request) error { return cfg.authorize(r.Header) },
		Redact:    cfg.redact,
	}}, nil
}

// Chat implements provider.LLM.
func (l *LLM) Chat(ctx context.Context, messages []provider.Message) (provider.TextStream, error) {
	return l.chat.Chat(ctx, messages)
}
