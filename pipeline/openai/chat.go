// Package openai talks to OpenAI-compatible servers (OpenAI, Ollama,
// whisper and Kokoro style servers): streaming chat completions over SSE,
// POST /audio/transcriptions per utterance and POST /audio/speech with
// streamed PCM. The LiveKit gateway's LLM endpoint speaks the same chat
// protocol, so the gateway package reuses Chat with its own credentials.
//
// Request bodies are openai-go's own parameter types, so they carry exactly
// the field names the API documents. openai-go also frames the SSE stream
// (its ssestream package), but its client is not used: it keeps only the
// "error" field of a failed response, which on the gateway is a bare
// string, and it retries on its own schedule. Every failure here is read
// whole (bounded) and typed by the provider package. Chunks are decoded
// into a small struct of our own that reads only the text and errors.
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/packages/ssestream"

	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
	"github.com/voicetui/voicetui/pipeline/wire"
)

// MaxChatResponse bounds one streamed reply: SSE lets a server send an
// event without end, and the decoder would keep it all in memory.
const MaxChatResponse = 8 << 20

// Chat streams chat completions from {BaseURL}/chat/completions.
type Chat struct {
	BaseURL string // e.g. https://api.openai.com/v1
	Model   string
	Client  *http.Client // nil: http.DefaultClient
	Retry   provider.Retry
	// Authorize sets credentials on each request (a fresh token per
	// request for the gateway). Nil sends none (Ollama).
	Authorize func(*http.Request) error
	Header    http.Header // extra headers
	// Redact hides the client's secrets in the errors it returns and
	// reports to Retry.OnRetry.
	Redact provider.Redactor
}

// chatRequest is the body of a streamed chat completion. "stream" is not a
// field of openai-go's params (its client adds it for NewStreaming), so it
// is set as an extra field the same way.
func chatRequest(model string, messages []provider.Message) ([]byte, error) {
	params := openai.ChatCompletionNewParams{
		Model:         model,
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	}
	for _, m := range messages {
		switch m.Role {
		case "system":
			params.Messages = append(params.Messages, openai.SystemMessage(m.Content))
		case "user":
			params.Messages = append(params.Messages, openai.UserMessage(m.Content))
		case "assistant":
			params.Messages = append(params.Messages, openai.AssistantMessage(m.Content))
		default:
			return nil, fmt.Errorf("llm: message role %q is not system, user or assistant", m.Role)
		}
	}
	params.SetExtraFields(map[string]any{"stream": true})
	return json.Marshal(params)
}

// Chat sends the conversation and returns the reply stream once its first
// text has arrived. Failures before that are retried per c.Retry; after
// it, the stream reports them from Err and nothing is retried (the user
// may already have heard the start of the reply).
func (c *Chat) Chat(ctx context.Context, messages []provider.Message) (_ provider.TextStream, err error) {
	defer c.Redact.Scrub(&err)
	body, err := chatRequest(c.Model, messages)
	if err != nil {
		return nil, err
	}
	var s *chatStream
	retry := c.Retry
	retry.OnRetry = c.Redact.OnRetry(retry.OnRetry)
	err = retry.Do(ctx, func(ctx context.Context) error {
		var err error
		s, err = c.attempt(ctx, body)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *Chat) attempt(ctx context.Context, payload []byte) (*chatStream, error) {
	client := c.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, b, err := send(ctx, provider.StageLLM, client, c.Retry.AttemptTimeout(), func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.BaseURL, "/")+"/chat/completions", bytes.NewReader(payload))
		if err != nil {
			return nil, err
		}
		for k, v := range c.Header {
			req.Header[k] = v
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		if c.Authorize != nil {
			if err := c.Authorize(req); err != nil {
				return nil, err
			}
		}
		return req, nil
	})
	if err != nil {
		return nil, err
	}
	b.limit = MaxChatResponse
	s := newChatStream(resp, b)
	s.redact = c.Redact
	// Read up to the first text: until then a failure is retried.
	if !s.advance() && s.err != nil {
		return nil, s.err
	}
	return s, nil
}

// newChatStream decodes resp's events, read through b.
func newChatStream(resp *http.Response, b *body) *chatStream {
	framed := *resp
	framed.Body = b
	return &chatStream{body: b, dec: ssestream.NewDecoder(&framed)}
}

// chatStream decodes chat-completion chunks for one goroutine. Its text
// is untrusted: the UI sanitizes it before display.
type chatStream struct {
	body    *body
	redact  provider.Redactor
	dec     ssestream.Decoder
	pending string // text read ahead by attempt
	cur     string
	done    bool
	err     error
}

func (s *chatStream) Next() bool {
	if s.pending == "" && (s.done || s.err != nil || !s.advance()) {
		return false
	}
	s.cur, s.pending = s.pending, ""
	return true
}

func (s *chatStream) Current() string { return s.cur }
func (s *chatStream) Err() error      { return s.redact.Error(s.err) }
func (s *chatStream) Close() error    { return s.body.Close() }

// advance reads events until one carries text (left in s.pending), the
// stream ends ([DONE]: done) or fails (s.err). It reports whether text
// was found.
func (s *chatStream) advance() bool {
	for s.dec.Next() {
		text, done, err := decodeEvent(s.dec.Event())
		switch {
		case err != nil:
			s.err = err
		case done:
			s.done = true
		case text != "":
			s.pending = text
			return true
		default:
			continue
		}
		s.Close()
		return false
	}
	var c provider.Classified
	switch err := s.dec.Err(); {
	case err == nil: // the server hung up before [DONE]
		s.err = &provider.ConnectionError{Stage: provider.StageLLM, Op: "read", Err: io.ErrUnexpectedEOF}
	case errors.As(err, &c) || s.body.parent.Err() != nil:
		s.err = err
	default: // the framing itself failed (a line over the decoder's limit)
		s.err = &provider.ProtocolError{Stage: provider.StageLLM, Detail: safetext.Sanitize(err.Error(), 200)}
	}
	s.Close()
	return false
}

// decodeEvent reads one SSE event of a chat completion stream.
func decodeEvent(ev ssestream.Event) (text string, done bool, err error) {
	data := bytes.TrimSpace(ev.Data)
	if string(data) == "[DONE]" {
		return "", true, nil
	}
	if len(data) == 0 {
		return "", false, nil
	}
	// A chunk's text is choices[].delta.content; a quota or error body sent
	// as an event has "type" or "error" instead. Read by exact name.
	c, err := wire.Decode(data)
	if err != nil {
		return "", false, provider.Malformed(provider.StageLLM, "chat chunk", data)
	}
	typ, ok := c.String("type")
	if !ok && c.Has("type") {
		return "", false, provider.Malformed(provider.StageLLM, "chat chunk type", data)
	}
	if ev.Type == "error" || c.Has("error") || typ != "" && typ != "chat.completion.chunk" {
		return "", false, provider.FromStreamMessage(provider.StageLLM, data)
	}
	for _, ch := range c.Objects("choices") {
		delta, _ := ch.Object("delta")
		content, ok := delta.String("content")
		if !ok && delta.Has("content") {
			return "", false, provider.Malformed(provider.StageLLM, "chat chunk content", data)
		}
		text += content
	}
	return text, false, nil
}
