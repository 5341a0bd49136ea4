package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// Default endpoints, as in the reference SDK.
const (
	ProductionURL = "https://agent-gateway.livekit.cloud/v1"
	StagingURL    = "https://agent-gateway.staging.livekit.cloud/v1"
)

// Default models and voice; any the gateway serves may be named instead.
const (
	DefaultLLMModel = "openai/gpt-4.1-mini"
	DefaultSTTModel = "deepgram/nova-3"
	DefaultTTSModel = "cartesia/sonic-2"
	DefaultVoice    = "9626c31c-bec5-4cca-baa8-f8ba9e84c8bc"
	DefaultLanguage = "en"
	DefaultTTSRate  = 24000
	// Identity is the token subject, as in the reference SDK.
	Identity = "agent"
)

// Config says where the gateway is and what to ask it for.
type Config struct {
	URL       string // http(s) base, ending in /v1
	APIKey    string
	APISecret string // never logged or shown
	LLMModel  string
	STTModel  string // "" lets the gateway choose ("auto")
	TTSModel  string
	Voice     string
	Language  string
	TTSRate   int    // TTS sample rate (Hz)
	Priority  string // X-LiveKit-Inference-Priority: priority, standard or low; "" omits it
	Provider  string // X-LiveKit-Inference-Provider; "" omits it
	Client    *http.Client
	Retry     provider.Retry
	// AllowInsecureHTTP lets tokens go over plain http to another
	// machine (--allow-insecure-http); loopback needs no permission.
	AllowInsecureHTTP bool
	// TurnAudioOnly says the server needs no continuous STT stream: the
	// caller may send only the user's turns, not the silence between
	// them (the embedded gateway; LiveKit Inference's STT providers want
	// the stream).
	TurnAudioOnly bool

	redact provider.Redactor // set by prepare
}

// ConfigFromEnv reads the environment variables the reference SDK reads:
// LIVEKIT_INFERENCE_URL (else derived from LIVEKIT_URL), the key from
// LIVEKIT_INFERENCE_API_KEY falling back to LIVEKIT_API_KEY, the secret
// from LIVEKIT_INFERENCE_API_SECRET falling back to LIVEKIT_API_SECRET.
// Models, voice and language get their defaults.
func ConfigFromEnv(getenv func(string) string) Config {
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := strings.TrimSpace(getenv(k)); v != "" {
				return v
			}
		}
		return ""
	}
	c := Config{
		URL:       first("LIVEKIT_INFERENCE_URL"),
		APIKey:    first("LIVEKIT_INFERENCE_API_KEY", "LIVEKIT_API_KEY"),
		APISecret: first("LIVEKIT_INFERENCE_API_SECRET", "LIVEKIT_API_SECRET"),
		LLMModel:  DefaultLLMModel,
		STTModel:  DefaultSTTModel,
		TTSModel:  DefaultTTSModel,
		Voice:     DefaultVoice,
		Language:  DefaultLanguage,
		TTSRate:   DefaultTTSRate,
	}
	if c.URL == "" {
		c.URL = ProductionURL
		if strings.Contains(getenv("LIVEKIT_URL"), ".staging.livekit.cloud") {
			c.URL = StagingURL
		}
	}
	return c
}

// Configured reports whether credentials are set.
func (c Config) Configured() bool { return c.APIKey != "" && c.APISecret != "" }

// Validate checks what every client needs, with errors a user can act on.
func (c Config) Validate() error {
	if !c.Configured() {
		return ErrNoCredentials
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("gateway: URL %q is not an http(s) URL (set LIVEKIT_INFERENCE_URL or --gateway-url)", c.URL)
	}
	if err := provider.CheckCredentialTransport("gateway", u, c.AllowInsecureHTTP); err != nil {
		return err
	}
	if c.TTSRate < 8000 || c.TTSRate > 48000 {
		return fmt.Errorf("gateway: TTS sample rate %d Hz is outside 8000-48000", c.TTSRate)
	}
	switch c.Priority {
	case "", "priority", "standard", "low":
	default:
		return fmt.Errorf("gateway: priority %q is not one of priority, standard, low", c.Priority)
	}
	return nil
}

// prepare validates c and returns it ready for a client: its secret
// hidden in every error the client returns or reports to Retry.OnRetry.
func (c Config) prepare() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.redact = provider.NewRedactor(c.APISecret)
	c.Retry.OnRetry = c.redact.OnRetry(c.Retry.OnRetry)
	return c, nil
}

// authorize sets a freshly minted token and the SDK's headers.
func (c Config) authorize(h http.Header) error {
	tok, err := Token(c.APIKey, c.APISecret, Identity, time.Now())
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+tok)
	h.Set("User-Agent", UserAgent)
	if c.Priority != "" {
		h.Set("X-LiveKit-Inference-Priority", c.Priority)
	}
	if c.Provider != "" {
		h.Set("X-LiveKit-Inference-Provider", c.Provider)
	}
	return nil
}

// UserAgent identifies voicetui to the gateway.
const UserAgent = "voicetui/0.1"

func (c Config) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return http.DefaultClient
}

// wsURL is the WebSocket URL of an endpoint: http becomes ws, https wss.
func (c Config) wsURL(path, model string) string {
	base := strings.TrimRight(c.URL, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	u := base + path
	if model != "" {
		u += "?model=" + url.QueryEscape(model)
	}
	return u
}
