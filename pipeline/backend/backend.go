// Package backend chooses and builds the inference providers from flags
// and environment: LiveKit Inference (package gateway) or an
// OpenAI-compatible server (package openai).
package backend

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/voicetui/voicetui/pipeline"
	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/openai"
)

// Kind names a backend.
type Kind string

const (
	Auto    Kind = "auto" // LiveKit when its credentials are set, else OpenAI-compatible when configured
	LiveKit Kind = "livekit"
	OpenAI  Kind = "openai"
)

// Options are the user's choices; "" means the backend's default.
type Options struct {
	Kind       Kind
	GatewayURL string // overrides LIVEKIT_INFERENCE_URL
	OpenAIURL  string // overrides OPENAI_BASE_URL
	LLMModel   string
	STTModel   string
	TTSModel   string
	Voice      string
	Language   string
	Priority   string // LiveKit only: priority, standard or low
	Retry      pipeline.Retry
}

// Backend is a ready set of providers.
type Backend struct {
	Kind        Kind
	Description string // for people: where and which models, never a secret
	LLM         pipeline.LLM
	STT         pipeline.STT
	TTS         pipeline.TTS
}

// ErrNotConfigured means no backend has what it needs.
var ErrNotConfigured = errors.New("no inference backend configured: set LIVEKIT_API_KEY and LIVEKIT_API_SECRET for LiveKit Inference, or OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) for an OpenAI-compatible one")

// ParseKind checks a --backend value.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case "", Auto:
		return Auto, nil
	case LiveKit, OpenAI:
		return k, nil
	}
	return "", fmt.Errorf("backend %q: want auto, livekit or openai", s)
}

// Open builds the providers o asks for, reading credentials from getenv.
func Open(o Options, getenv func(string) string) (*Backend, error) {
	kind := o.Kind
	if kind == "" || kind == Auto {
		switch {
		case gateway.ConfigFromEnv(getenv).Configured():
			kind = LiveKit
		case getenv("OPENAI_API_KEY") != "" || getenv("OPENAI_BASE_URL") != "" || o.OpenAIURL != "":
			kind = OpenAI
		default:
			return nil, ErrNotConfigured
		}
	}
	switch kind {
	case LiveKit:
		return openLiveKit(o, getenv)
	case OpenAI:
		return openOpenAI(o, getenv)
	}
	return nil, fmt.Errorf("backend %q: want auto, livekit or openai", kind)
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func openLiveKit(o Options, getenv func(string) string) (*Backend, error) {
	c := gateway.ConfigFromEnv(getenv)
	set(&c.URL, o.GatewayURL)
	set(&c.LLMModel, o.LLMModel)
	set(&c.STTModel, o.STTModel)
	set(&c.TTSModel, o.TTSModel)
	set(&c.Voice, o.Voice)
	set(&c.Language, o.Language)
	c.Priority = o.Priority
	c.Retry = o.Retry
	llm, err := gateway.NewLLM(c)
	if err != nil {
		return nil, err
	}
	stt, err := gateway.NewSTT(c)
	if err != nil {
		return nil, err
	}
	tts, err := gateway.NewTTS(c)
	if err != nil {
		return nil, err
	}
	return &Backend{Kind: LiveKit, LLM: llm, STT: stt, TTS: tts,
		Description: fmt.Sprintf("LiveKit Inference at %s: %s, %s, %s", safeURL(c.URL), c.LLMModel, orAuto(c.STTModel), c.TTSModel)}, nil
}

func openOpenAI(o Options, getenv func(string) string) (*Backend, error) {
	if o.Priority != "" {
		return nil, errors.New("--priority applies to LiveKit Inference only")
	}
	c := openai.ConfigFromEnv(getenv)
	set(&c.BaseURL, o.OpenAIURL)
	set(&c.ChatModel, o.LLMModel)
	set(&c.STTModel, o.STTModel)
	set(&c.TTSModel, o.TTSModel)
	set(&c.Voice, o.Voice)
	set(&c.Language, o.Language)
	c.Retry = o.Retry
	llm, err := openai.NewChat(c)
	if err != nil {
		return nil, err
	}
	stt, err := openai.NewTranscriber(c)
	if err != nil {
		return nil, err
	}
	tts, err := openai.NewSpeech(c)
	if err != nil {
		return nil, err
	}
	return &Backend{Kind: OpenAI, LLM: llm, STT: stt, TTS: tts,
		Description: fmt.Sprintf("OpenAI-compatible at %s: %s, %s, %s", safeURL(c.BaseURL), c.ChatModel, c.STTModel, c.TTSModel)}, nil
}

func orAuto(model string) string {
	if model == "" {
		return "auto"
	}
	return model
}

// safeURL hides a password written into a URL.
func safeURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
