package localgw

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/voicetui/voicetui/pipeline/wire"
)

// chatRequest is what the demo agent reads of a request, decoded only
// after the request passed wire.ChatRequest: encoding/json alone matches
// names case-insensitively and would take {"Role": ...} for "role".
type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role      string          `json:"role"`
		Content   json.RawMessage `json:"content"`
		ToolCalls []struct {
			ID       string `json:"id"`
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		} `json:"tool_calls"`
		ToolCallID string `json:"tool_call_id"`
	} `json:"messages"`
	Tools []struct {
		Function struct {
			Name       string `json:"name"`
			Parameters struct {
				Properties map[string]struct {
					Type string `json:"type"`
				} `json:"properties"`
			} `json:"parameters"`
		} `json:"function"`
	} `json:"tools"`
}

// toolCall is what the demo agent does with the tools a request offers:
// it calls the one whose name the user's last turn says (lookup_order:
// "look up order 427" or "lookup order 427"), its properties filled with
// the turn's last number (or last word), so a developer sees their
// agent's tool run without a real model. After the tool's output it says
// what the tool answered. ok is false when no tool is called.
func (req chatRequest) toolCall(last string) (name, arguments string, ok bool) {
	if len(req.Messages) == 0 || req.Messages[len(req.Messages)-1].Role != "user" {
		return "", "", false
	}
	said := strings.ToLower(strings.Join(strings.FieldsFunc(last, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
	}), " "))
	for _, t := range req.Tools {
		fn := t.Function
		words := strings.ToLower(strings.ReplaceAll(fn.Name, "_", " "))
		if fn.Name == "" || !strings.Contains(said, words) && !strings.Contains(said, strings.ReplaceAll(words, "lookup", "look up")) {
			continue
		}
		fields := strings.Fields(said)
		value := fields[len(fields)-1]
		for _, f := range fields {
			if _, err := strconv.ParseFloat(f, 64); err == nil {
				value = f
			}
		}
		args := map[string]any{}
		for prop, schema := range fn.Parameters.Properties {
			switch n, err := strconv.ParseFloat(value, 64); {
			case (schema.Type == "number" || schema.Type == "integer") && err == nil:
				args[prop] = n
			default:
				args[prop] = value
			}
		}
		b, _ := json.Marshal(args)
		return fn.Name, string(b), true
	}
	return "", "", false
}

// toolAnswer is the demo agent's reply after a tool ran: what it answered.
func (req chatRequest) toolAnswer() (string, bool) {
	if len(req.Messages) == 0 {
		return "", false
	}
	m := req.Messages[len(req.Messages)-1]
	if m.Role != "tool" {
		return "", false
	}
	name := "the tool"
	for _, prev := range req.Messages {
		for _, c := range prev.ToolCalls {
			if c.ID == m.ToolCallID && c.Function.Name != "" {
				name = c.Function.Name
			}
		}
	}
	out := strings.TrimSpace(text(m.Content))
	var s string
	if json.Unmarshal([]byte(out), &s) == nil {
		out = s // agents-js sends a string result JSON-encoded
	}
	if r := []rune(out); len(r) > 200 {
		out = string(r[:200]) + "..."
	}
	return name + " answered: " + out, true
}

// text reads a message's content: a string, or OpenAI's list of parts
// whose text parts are joined.
func text(content json.RawMessage) string {
	var s string
	if json.Unmarshal(content, &s) == nil {
		return s
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	json.Unmarshal(content, &parts)
	var b strings.Builder
	for _, p := range parts {
		if p.Type == "text" {
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// maxChatRequest bounds a request body (a long conversation fits).
const maxChatRequest = 1 << 20

// readChat reads and checks a chat request as the OpenAI API does: a body
// that is not the documented shape gets 400 with its error body.
func (s *Server) readChat(w http.ResponseWriter, r *http.Request) (req chatRequest, body []byte, ok bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxChatRequest+1))
	if err != nil {
		return req, nil, false // the client went away
	}
	if len(body) > maxChatRequest {
		s.journal.note(r, "llm", http.StatusRequestEntityTooLarge, "bad request: body larger than 1 MiB")
		writeJSON(w, http.StatusRequestEntityTooLarge, openAIError("request body larger than 1 MiB", ""))
		return req, nil, false
	}
	if err := wire.Check(wire.ChatRequest, body); err != nil {
		var we *wire.Error
		if !errors.As(err, &we) {
			writeJSON(w, http.StatusInternalServerError, openAIError("embedded gateway: "+err.Error(), ""))
			return req, nil, false
		}
		s.journal.note(r, "llm", http.StatusBadRequest, "bad request: "+we.Message)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write(we.OpenAIBody())
		return req, nil, false
	}
	if err := json.Unmarshal(body, &req); err != nil { // cannot fail after the check
		writeJSON(w, http.StatusBadRequest, openAIError(err.Error(), ""))
		return req, nil, false
	}
	if !req.Stream {
		s.journal.note(r, "llm", http.StatusBadRequest, "bad request: not streamed")
		writeJSON(w, http.StatusBadRequest, openAIError("the embedded gateway streams only: set \"stream\": true", "stream"))
		return req, nil, false
	}
	return req, body, true
}

// openAIError is the OpenAI API's error body for a bad request.
func openAIError(message, param string) map[string]any {
	var p any
	if param != "" {
		p = param
	}
	return map[string]any{"error": map[string]any{"message": message, "type": "invalid_request_error", "param": p, "code": nil}}
}

// chat streams the demo agent's reply as chat-completion chunks.
func (s *Server) serveChat(w http.ResponseWriter, r *http.Request) {
	req, body, ok := s.readChat(w, r)
	if !ok {
		return
	}
	refused, faults := s.policy.Admit(LLM)
	n := s.llmRequests.Add(1)
	h := w.Header()
	h.Set("X-LiveKit-Inference-RPM-Limit", "1000")
	h.Set("X-LiveKit-Inference-RPM-Used", strconv.FormatInt(n, 10))
	h.Set("X-LiveKit-Inference-TPM-Limit", "1000000")
	h.Set("X-LiveKit-Inference-TPM-Used", strconv.FormatInt(s.llmTokens.Load(), 10))
	if refused != nil {
		s.journal.note(r, "llm", http.StatusTooManyRequests, "quota rule "+refused.String())
		s.refuse(w, r, LLM, refused.refusal())
		return
	}
	if f, ok := fault(faults, ServerErr); ok {
		s.journal.note(r, "llm", http.StatusServiceUnavailable, "fault "+f.String())
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "embedded gateway: injected fault llm:5xx"})
		return
	}
	if s.opts.Upstream.passes(LLM) {
		s.passChat(w, r, body, faults)
		return
	}
	s.journal.note(r, "llm", http.StatusOK, served(faults))
	var last string
	for _, m := range req.Messages {
		if m.Role == "user" {
			last = text(m.Content)
		}
	}
	reply := Reply(last, time.Now())
	if answer, ok := req.toolAnswer(); ok {
		reply = answer
	}
	tool, arguments, calls := req.toolCall(last)
	if calls {
		reply = tool + " " + arguments
	}
	words := strings.SplitAfter(reply, " ")
	s.llmTokens.Add(int64(len(words)))

	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	id := fmt.Sprintf("chatcmpl-local-%d", n)
	send := func(data string) bool {
		if _, err := fmt.Fprintf(w, "data: %s\n\n", data); err != nil {
			return false
		}
		if flusher != nil {
			flusher.Flush()
		}
		return true
	}
	chunk := func(delta map[string]any, finish any) string {
		b, _ := json.Marshal(map[string]any{
			"id": id, "object": "chat.completion.chunk", "created": time.Now().Unix(), "model": LLMModel,
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}},
		})
		return string(b)
	}
	ctx := r.Context()
	if f, ok := fault(faults, Delay); ok && !sleep(ctx, f.Delay) {
		return
	}
	if _, ok := fault(faults, BadFrame); ok {
		send(`{"choices":[{"delta":{"content":`) // cut short: not JSON
		return
	}
	if _, ok := fault(faults, KeepAlive); ok {
		keepAlive(ctx, w, flusher)
		return
	}
	if !send(chunk(map[string]any{"role": "assistant"}, nil)) {
		return
	}
	if calls {
		if _, ok := fault(faults, Disconnect); ok {
			hangUp(w)
			return
		}
		if _, ok := fault(faults, Stall); ok {
			<-ctx.Done()
			return
		}
		call := map[string]any{"index": 0, "id": fmt.Sprintf("call_local_%d", n), "type": "function",
			"function": map[string]any{"name": tool, "arguments": arguments}}
		send(chunk(map[string]any{"tool_calls": []any{call}}, nil))
		send(chunk(map[string]any{}, "tool_calls"))
		send("[DONE]")
		return
	}
	for i, word := range words {
		if i > 0 && !sleep(ctx, s.opts.TokenDelay) {
			return
		}
		if !send(chunk(map[string]any{"content": word}, nil)) {
			return
		}
		if i == 0 {
			if _, ok := fault(faults, Disconnect); ok {
				hangUp(w)
				return
			}
			if _, ok := fault(faults, Stall); ok {
				<-ctx.Done()
				return
			}
		}
	}
	send(chunk(map[string]any{}, "stop"))
	usage, _ := json.Marshal(map[string]any{"id": id, "object": "chat.completion.chunk", "model": LLMModel, "choices": []any{},
		"usage": map[string]int{"prompt_tokens": len(strings.Fields(last)), "completion_tokens": len(words), "total_tokens": len(strings.Fields(last)) + len(words)}})
	send(string(usage))
	send("[DONE]")
}

// hangUp drops the connection without ending the response properly.
func hangUp(w http.ResponseWriter) {
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		conn.Close()
		return
	}
	panic(http.ErrAbortHandler) // HTTP/2: the server resets the stream
}

// Reply is the demo agent's answer to what the user said. It never
// pretends to be a language model.
func Reply(heard string, now time.Time) string {
	said := strings.TrimSpace(heard)
	low := strings.ToLower(said)
	switch {
	case said == "":
		return "I did not catch that. Could you say it again?"
	case strings.HasPrefix(said, "[speech"):
		return "I heard you speak, but this embedded demo gateway does not transcribe real speech. Give it a script with --stt-script to hear scripted words."
	case strings.Contains(low, "help"):
		return "I am the embedded demo agent. Ask me the time, say hello, or exhaust a quota to hear the fallback."
	case strings.Contains(low, "time"):
		return "It is " + now.Format("15:04") + "."
	case hasWord(low, "hello", "hi", "hey"):
		return "Hello! I am the embedded demo agent, not a real language model. Say help to hear what I can do."
	case hasWord(low, "bye", "goodbye"):
		return "Goodbye!"
	}
	if r := []rune(said); len(r) > 200 {
		said = string(r[:200]) + "..."
	}
	return "You said: " + said + ". I am a demo agent, so I can only repeat what I heard."
}

func hasWord(s string, words ...string) bool {
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return !('a' <= r && r <= 'z') }) {
		for _, w := range words {
			if f == w {
				return true
			}
		}
	}
	return false
}

// passChat passes a chat request the rules let through to the upstream,
// with the faults that apply to it on top.
func (s *Server) passChat(w http.ResponseWriter, r *http.Request, body []byte, faults []FaultRule) {
	for k := range w.Header() {
		delete(w.Header(), k) // the upstream's usage headers, not ours
	}
	if f, ok := fault(faults, Delay); ok && !sleep(r.Context(), f.Delay) {
		return
	}
	s.passHTTP(w, r, LLM, "/chat/completions", body, func() bool {
		if _, ok := fault(faults, Disconnect); ok {
			hangUp(w)
			return false
		}
		if _, ok := fault(faults, Stall); ok {
			<-r.Context().Done()
			return false
		}
		return true
	})
}

// keepAlive keeps an SSE stream busy without an answer: a comment every
// half second, which resets a client's idle timer, until the client goes.
func keepAlive(ctx context.Context, w http.ResponseWriter, flusher http.Flusher) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := fmt.Fprint(w, ": ping\n\n"); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
