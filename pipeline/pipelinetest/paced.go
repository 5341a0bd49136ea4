package pipelinetest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
)

// PacedLLM is an OpenAI-compatible chat endpoint that streams like a real
// model: a reply of several sentences, token by token (words with their
// leading space, punctuation on its own), each token after a random pause
// between MinToken and MaxToken, then the finish chunk, the usage chunk
// and [DONE]. Requests are checked as strictly as the real server does
// (Strict). A test points a client at it directly, or puts it behind the
// embedded gateway (`--upstream URL --upstream-kind openai`) so that the
// gateway's rules still apply.
type PacedLLM struct {
	// Reply is the answer to the n-th request (from 1) whose last user
	// message is heard; nil: Answer.
	Reply              func(n int, heard string) string
	MinToken, MaxToken time.Duration // default 20 ms and 60 ms

	mu       sync.Mutex
	requests int
	heard    []string
}

// Answer is the default reply: three sentences that say which request
// they answer and what was heard, so a test can find each on the screen.
func Answer(n int, heard string) string {
	return fmt.Sprintf("Answer %d, about %s. This second sentence comes token by token. The third one ends answer %d.", n, Words(heard, 4), n)
}

// Words is at most n words of s, for quoting.
func Words(s string, n int) string {
	f := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	if len(f) > n {
		f = f[:n]
	}
	if len(f) == 0 {
		return "nothing"
	}
	return strings.Join(f, " ")
}

// Tokens splits text as a tokenizer roughly does: words keep their
// leading space; punctuation is a token of its own.
func Tokens(text string) []string {
	var out []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			out = append(out, cur.String())
			cur.Reset()
		}
	}
	for _, r := range text {
		switch {
		case r == ' ':
			flush()
			cur.WriteRune(r)
		case unicode.IsPunct(r):
			flush()
			out = append(out, string(r))
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return out
}

// Requests is how many chat requests were answered.
func (p *PacedLLM) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Heard is the last user message of every request, in order.
func (p *PacedLLM) Heard() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.heard...)
}

// Handler serves /chat/completions and /models under any prefix.
func (p *PacedLLM) Handler(t testing.TB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{prefix...}", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/models") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"object":"list","data":[{"id":"paced-test-model","object":"model","created":0,"owned_by":"test"}]}`)
	})
	mux.HandleFunc("POST /{prefix...}", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/chat/completions") {
			http.NotFound(w, r)
			return
		}
		p.chat(t, w, r)
	})
	return Strict(t, mux)
}

func (p *PacedLLM) chat(t testing.TB, w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		Refuse(w, http.StatusBadRequest, `{"error":{"message":"bad json","type":"invalid_request_error","param":null,"code":null}}`)
		return
	}
	heard := ""
	for _, m := range req.Messages {
		if m.Role != "user" {
			continue
		}
		var s string
		if json.Unmarshal(m.Content, &s) != nil {
			var parts []struct{ Type, Text string }
			json.Unmarshal(m.Content, &parts)
			for _, part := range parts {
				s += part.Text
			}
		}
		heard = s
	}
	p.mu.Lock()
	p.requests++
	n := p.requests
	p.heard = append(p.heard, heard)
	reply := p.Reply
	lo, hi := p.MinToken, p.MaxToken
	p.mu.Unlock()
	if reply == nil {
		reply = Answer
	}
	if lo == 0 && hi == 0 {
		lo, hi = 20*time.Millisecond, 60*time.Millisecond
	}
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	tokens := Tokens(reply(n, heard))
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	id := fmt.Sprintf("chatcmpl-paced-%d", n)
	chunk := func(delta map[string]string, finish any) string {
		b, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}})
		return string(b)
	}
	SSE(t, w, chunk(map[string]string{"role": "assistant", "content": ""}, nil))
	for _, tok := range tokens {
		pause := lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
		select {
		case <-r.Context().Done():
			return // the client gave up (barge-in)
		case <-time.After(pause):
		}
		SSE(t, w, chunk(map[string]string{"content": tok}, nil))
	}
	usage, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": req.Model, "choices": []any{},
		"usage": map[string]int{"prompt_tokens": len(Tokens(heard)), "completion_tokens": len(tokens), "total_tokens": len(Tokens(heard)) + len(tokens)}})
	SSE(t, w, chunk(map[string]string{}, "stop"), string(usage), "[DONE]")
}
