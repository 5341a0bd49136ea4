// Package backend chooses and builds the inference providers from flags
// and environment: LiveKit Inference (package gateway), an
// OpenAI-compatible server (package openai), or, by default, the embedded
// gateway (package localgw) started in-process and spoken to by the very
// same LiveKit clients.
package backend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/openai"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Kind names a backend.
type Kind string

const (
	Auto     Kind = "auto" // LiveKit when its credentials are set, else OpenAI-compatible when configured, else embedded
	LiveKit  Kind = "livekit"
	OpenAI   Kind = "openai"
	Embedded Kind = "embedded"
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
	// AllowInsecureHTTP lets credentials go over plain http to another
	// machine (loopback needs no permission).
	AllowInsecureHTTP bool
	Retry             provider.Retry
	Local             localgw.Options // the embedded gateway's rules and script
	// ClientSecret, for the embedded gateway only, signs the clients'
	// tokens with another secret than the gateway checks: QA's 401.
	ClientSecret string
}

// Backend is a ready set of providers.
type Backend struct {
	Kind        Kind
	Description string // for people: where and which models, never a secret
	LLM         provider.LLM
	STT         provider.STT
	TTS         provider.TTS
	// Gateway is the in-process embedded gateway (its control endpoint
	// drives quota demos); nil for the other backends.
	Gateway *localgw.Server
}

// Close releases the providers and stops an embedded gateway.
func (b *Backend) Close() error {
	err := b.TTS.Close()
	if b.Gateway != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err = errors.Join(err, b.Gateway.Close(ctx))
	}
	return err
}

// ParseKind checks a --backend value.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.ToLower(strings.TrimSpace(s))); k {
	case "", Auto:
		return Auto, nil
	case LiveKit, OpenAI, Embedded:
		return k, nil
	}
	return "", fmt.Errorf("backend %q: want auto, embedded, livekit or openai", s)
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
			kind = Embedded
		}
	}
	if kind != Embedded && (len(o.Local.Quotas) > 0 || len(o.Local.Faults) > 0 || len(o.Local.STTScript) > 0) {
		return nil, fmt.Errorf("--quota, --fault and --stt-script drive the embedded gateway; the %s backend is real", kind)
	}
	switch kind {
	case Embedded:
		UpstreamCredentials(o.Local.Upstream, getenv)
		return openEmbedded(o)
	case LiveKit:
		return openLiveKit(o, getenv, nil)
	case OpenAI:
		return openOpenAI(o, getenv)
	}
	return nil, fmt.Errorf("backend %q: want auto, embedded, livekit or openai", kind)
}

// openEmbedded starts the embedded gateway on a free loopback port and
// connects the LiveKit clients to it.
func openEmbedded(o Options) (*Backend, error) {
	if o.GatewayURL != "" || o.Priority != "" {
		return nil, errors.New("--gateway-url and --priority are for LiveKit Inference; the embedded gateway runs in-process")
	}
	srv, err := localgw.New(o.Local)
	if err != nil {
		return nil, err
	}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		return nil, err
	}
	key, secret := o.Local.Key, o.Local.Secret
	if key == "" {
		key = localgw.DefaultKey
	}
	if secret == "" {
		secret = localgw.DefaultSecret
	}
	if o.ClientSecret != "" {
		secret = o.ClientSecret
	}
	env := map[string]string{"LIVEKIT_INFERENCE_URL": srv.URL(), "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret}
	o.GatewayURL = ""
	// Its own STT needs no silence between turns (what a real STT
	// upstream behind it may).
	turnsOnly := o.Local.Upstream == nil || o.Local.Upstream.Kind == localgw.UpstreamOpenAI
	b, err := openLiveKit(o, func(k string) string { return env[k] }, func(c *gateway.Config) { c.TurnAudioOnly = turnsOnly })
	if err != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Close(ctx)
		return nil, err
	}
	b.Kind, b.Gateway = Embedded, srv
	b.Description = fmt.Sprintf("embedded gateway at %s: demo agent, %s STT, espeak-ng", srv.URL(), srv.STTEngine())
	return b, nil
}

func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func openLiveKit(o Options, getenv func(string) string, tune func(*gateway.Config)) (*Backend, error) {
	c := gateway.ConfigFromEnv(getenv)
	set(&c.URL, o.GatewayURL)
	set(&c.LLMModel, o.LLMModel)
	set(&c.STTModel, o.STTModel)
	set(&c.TTSModel, o.TTSModel)
	set(&c.Voice, o.Voice)
	set(&c.Language, o.Language)
	c.Priority = o.Priority
	c.Retry = o.Retry
	c.AllowInsecureHTTP = o.AllowInsecureHTTP
	if tune != nil {
		tune(&c)
	}
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
		Description: fmt.Sprintf("LiveKit Inference at %s: %s, %s, %s", provider.SafeURL(c.URL), c.LLMModel, orAuto(c.STTModel), c.TTSModel)}, nil
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
	c.AllowInsecureHTTP = o.AllowInsecureHTTP
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
		Description: fmt.Sprintf("OpenAI-compatible at %s: %s, %s, %s", provider.SafeURL(c.BaseURL), c.ChatModel, c.STTModel, c.TTSModel)}, nil
}

func orAuto(model string) string {
	if model == "" {
		return "auto"
	}
	return model
}

// UpstreamCredentials fills in the credentials of the embedded gateway's
// upstream (if any) from the environment, as the clients read them:
// LIVEKIT_INFERENCE_API_KEY/_SECRET falling back to LIVEKIT_API_KEY/_SECRET
// for LiveKit Inference, OPENAI_API_KEY for an OpenAI-compatible server.
func UpstreamCredentials(u *localgw.Upstream, getenv func(string) string) {
	if u == nil {
		return
	}
	if u.Kind == localgw.UpstreamOpenAI {
		if u.APIKey == "" {
			u.APIKey = openai.ConfigFromEnv(getenv).APIKey
		}
		return
	}
	if u.Key == "" && u.Secret == "" {
		c := gateway.ConfigFromEnv(getenv)
		u.Key, u.Secret = c.APIKey, c.APISecret
	}
}
