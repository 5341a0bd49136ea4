package openai

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// DefaultBaseURL is OpenAI's API; OPENAI_BASE_URL points elsewhere (Ollama:
// http://localhost:11434/v1).
const DefaultBaseURL = "https://api.openai.com/v1"

// Defaults for OpenAI itself; other servers name their own models.
const (
	DefaultChatModel = "gpt-4.1-mini"
	DefaultSTTModel  = "whisper-1"
	DefaultTTSModel  = "gpt-4o-mini-tts"
	DefaultVoice     = "alloy"
	// SpeechRate is the rate of response_format "pcm" (OpenAI, Kokoro).
	SpeechRate = 24000
)

// Config says where an OpenAI-compatible server is and what to ask it.
type Config struct {
	BaseURL   string
	APIKey    string // "" sends no Authorization (local servers)
	ChatModel string
	STTModel  string
	TTSModel  string
	Voice     string
	Language  string // ISO-639-1 hint for transcription; "" auto-detects
	Client    *http.Client
	Retry     provider.Retry
	// AllowInsecureHTTP lets the key go over plain http to another
	// machine (--allow-insecure-http); loopback needs no permission.
	AllowInsecureHTTP bool

	redact provider.Redactor // set by prepare
}

// ConfigFromEnv reads OPENAI_BASE_URL and OPENAI_API_KEY; models and voice
// get OpenAI's defaults.
func ConfigFromEnv(getenv func(string) string) Config {
	c := Config{
		BaseURL:   strings.TrimSpace(getenv("OPENAI_BASE_URL")),
		APIKey:    strings.TrimSpace(getenv("OPENAI_API_KEY")),
		ChatModel: DefaultChatModel, STTModel: DefaultSTTModel,
		TTSModel: DefaultTTSModel, Voice: DefaultVoice,
	}
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	return c
}

// Validate checks the base URL; a missing key is allowed for local servers
// but not for OpenAI itself.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("openai: base URL %q is not an http(s) URL (set OPENAI_BASE_URL or --openai-url)", c.BaseURL)
	}
	if c.APIKey == "" && u.Host == "api.openai.com" {
		return fmt.Errorf("openai: OPENAI_API_KEY is not set")
	}
	if c.APIKey != "" {
		if err := provider.CheckCredentialTransport("openai", u, c.AllowInsecureHTTP); err != nil {
			return err
		}
	}
	return nil
}

// prepare validates c and returns it ready for a client: its key hidden
// in every error the client returns or reports to Retry.OnRetry.
func (c Config) prepare() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	c.redact = provider.NewRedactor(c.APIKey)
	c.Retry.OnRetry = c.redact.OnRetry(c.Retry.OnRetry)
	return c, nil
}

func (c Config) authorize(r *http.Request) error {
	if c.APIKey != "" {
		r.Header.Set("Authorization", "Bearer "+c.APIKey)
	}
	return nil
}

func (c Config) client() *http.Client {
	if c.Client != nil {
		return c.Client
	}
	return http.DefaultClient
}

func (c Config) endpoint(path string) string { return strings.TrimRight(c.BaseURL, "/") + path }

// NewChat returns the chat client of cfg.
func NewChat(cfg Config) (*Chat, error) {
	cfg, err := cfg.prepare()
	if err != nil {
		return nil, err
	}
	return &Chat{BaseURL: cfg.BaseURL, Model: cfg.ChatModel, Client: cfg.client(), Retry: cfg.Retry, Authorize: cfg.authorize,
		Redact: cfg.redact}, nil
}
