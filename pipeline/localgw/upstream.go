package localgw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/pipeline/safetext"
)

// With an upstream, the embedded gateway sits in front of a real one: a
// request its rules let through is passed on, with a token of its own for
// the upstream, and the upstream's answer comes back as it was, so an
// agent runs on real models until a quota rule (set by a flag or the
// control endpoint) makes it fail the way the real gateway would.

// UpstreamKind is the protocol the upstream speaks.
type UpstreamKind string

const (
	// UpstreamLiveKit is LiveKit Inference: chat, models, STT and TTS
	// pass through.
	UpstreamLiveKit UpstreamKind = "livekit"
	// UpstreamOpenAI is an OpenAI-compatible server: chat and models pass
	// through; STT and TTS stay on the local engines (their protocols
	// differ from LiveKit's WebSockets).
	UpstreamOpenAI UpstreamKind = "openai"
)

// Upstream is a real gateway requests are passed on to.
type Upstream struct {
	URL  string // http(s) base, ending in /v1
	Kind UpstreamKind
	// Credentials: Key and Secret mint LiveKit tokens; APIKey is an
	// OpenAI-compatible bearer key. Never logged.
	Key, Secret string
	APIKey      string
	Client      *http.Client // nil: a client with no overall timeout (streams are long)
	// AllowInsecureHTTP lets the credentials go over plain http to
	// another machine; loopback needs no permission.
	AllowInsecureHTTP bool
}

func (u *Upstream) check() error {
	if u.URL == "" || !strings.HasPrefix(u.URL, "http://") && !strings.HasPrefix(u.URL, "https://") {
		return fmt.Errorf("embedded gateway: --upstream %q is not an http(s) URL", provider.SafeURL(u.URL))
	}
	if parsed, err := url.Parse(u.URL); err != nil || parsed.Host == "" {
		return fmt.Errorf("embedded gateway: --upstream %q is not an http(s) URL", provider.SafeURL(u.URL))
	} else if err := provider.CheckCredentialTransport("embedded gateway: --upstream", parsed, u.AllowInsecureHTTP); err != nil {
		return err
	}
	switch u.Kind {
	case "", UpstreamLiveKit:
		u.Kind = UpstreamLiveKit
		if u.Key == "" || u.Secret == "" {
			return errors.New("embedded gateway: --upstream needs LIVEKIT_API_KEY and LIVEKIT_API_SECRET (or LIVEKIT_INFERENCE_API_KEY/_SECRET) for the real gateway")
		}
	case UpstreamOpenAI:
	default:
		return fmt.Errorf("embedded gateway: upstream kind %q: want livekit or openai", u.Kind)
	}
	if u.Client == nil {
		u.Client = &http.Client{}
	}
	return nil
}

// passes reports whether stage goes to the upstream.
func (u *Upstream) passes(stage Stage) bool {
	return u != nil && (u.Kind == UpstreamLiveKit || stage == LLM)
}

// redact hides the upstream's credentials in what is said of a failure.
func (u *Upstream) redact(s string) string {
	return provider.NewRedactor(u.Secret, u.APIKey).String(s)
}

// authorize sets the upstream's credentials on h: a fresh LiveKit token,
// or the OpenAI key.
func (u *Upstream) authorize(h http.Header) error {
	if u.Kind == UpstreamOpenAI {
		if u.APIKey != "" {
			h.Set("Authorization", "Bearer "+u.APIKey)
		}
		return nil
	}
	tok, err := gateway.Token(u.Key, u.Secret, gateway.Identity, time.Now())
	if err != nil {
		return err
	}
	h.Set("Authorization", "Bearer "+tok)
	return nil
}

// forwardedHeaders are what the upstream hears of the client besides our
// credentials.
var forwardedHeaders = []string{"Content-Type", "Accept", "User-Agent", "X-LiveKit-Room-Id", "X-LiveKit-Job-Id",
	"X-LiveKit-Agent-Id", "X-LiveKit-Inference-Priority", "X-LiveKit-Inference-Provider"}

// passHTTP sends r (whose body is body) to the upstream at path and copies
// the answer back, streaming. first runs once the first bytes of a 2xx
// answer have been written (faults that cut a stream short); it returns
// false to stop copying.
func (s *Server) passHTTP(w http.ResponseWriter, r *http.Request, stage Stage, path string, body []byte, first func() bool) {
	u := s.opts.Upstream
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimRight(u.URL, "/")+path, rd)
	if err != nil {
		s.upstreamFailed(w, r, stage, err)
		return
	}
	for _, h := range forwardedHeaders {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	if err := u.authorize(req.Header); err != nil {
		s.upstreamFailed(w, r, stage, err)
		return
	}
	resp, err := u.Client.Do(req)
	if err != nil {
		s.upstreamFailed(w, r, stage, err)
		return
	}
	defer resp.Body.Close()
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	why := "passed to the upstream"
	if resp.StatusCode/100 != 2 {
		why = fmt.Sprintf("the upstream answered %d", resp.StatusCode)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		// A refusal is short: read it whole, so its body is told too.
		body, _ := io.ReadAll(io.LimitReader(resp.Body, provider.MaxBody))
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
		s.journal.note(r, string(stage), resp.StatusCode, why)
		s.refused(r, stage, resp.StatusCode, resp.Header, body)
		return
	}
	w.WriteHeader(resp.StatusCode)
	s.journal.note(r, string(stage), resp.StatusCode, why)
	flusher, _ := w.(http.Flusher)
	buf := make([]byte, 32<<10)
	wrote := false
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
			if !wrote && resp.StatusCode/100 == 2 && first != nil && !first() {
				return
			}
			wrote = true
		}
		if err != nil {
			return
		}
	}
}

// upstreamFailed answers a request the upstream could not be asked.
func (s *Server) upstreamFailed(w http.ResponseWriter, r *http.Request, stage Stage, err error) {
	msg := "embedded gateway: the upstream did not answer: " + s.opts.Upstream.redact(safetext.Sanitize(err.Error(), 300))
	s.journal.note(r, string(stage), http.StatusBadGateway, msg)
	writeJSON(w, http.StatusBadGateway, map[string]string{"error": msg})
}

// passSocket proxies an STT or TTS socket to the upstream: the upstream is
// dialled first, so that its refusal (a 429 with its quota body) reaches
// the client as it was; then every message passes both ways, the
// client's checked against the protocol's schema. After the client's
// session.close nothing more is sent to it.
func (s *Server) passSocket(w http.ResponseWriter, r *http.Request, stage Stage, faults []FaultRule) {
	u := s.opts.Upstream
	h := http.Header{}
	for _, k := range forwardedHeaders {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	if err := u.authorize(h); err != nil {
		s.upstreamFailed(w, r, stage, err)
		return
	}
	target := strings.TrimRight(u.URL, "/") + "/" + string(stage)
	target = "ws" + strings.TrimPrefix(target, "http")
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	dctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	up, resp, err := websocket.Dial(dctx, target, &websocket.DialOptions{HTTPClient: u.Client, HTTPHeader: h})
	cancel()
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			// The upstream refused: its answer is the client's. (The
			// WebSocket library keeps the first KiB of the body.)
			body, _ := io.ReadAll(io.LimitReader(resp.Body, provider.MaxBody))
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			w.Write(body)
			s.journal.note(r, string(stage), resp.StatusCode, fmt.Sprintf("the upstream refused the socket (%d)", resp.StatusCode))
			s.refused(r, stage, resp.StatusCode, resp.Header, body)
			return
		}
		s.upstreamFailed(w, r, stage, err)
		return
	}
	defer up.CloseNow()
	up.SetReadLimit(readLimit)
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.journal.note(r, string(stage), http.StatusBadRequest, "not a WebSocket handshake: "+err.Error())
		return
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	s.journal.note(r, string(stage), http.StatusSwitchingProtocols, "passed to the upstream"+strings.TrimPrefix(served(faults), "served"))
	ss := s.newSession(r, conn, stage)

	ctx, stop := context.WithCancel(ss.ctx)
	defer stop()
	go func() { // upstream -> client
		defer stop()
		first := true
		for {
			typ, data, err := up.Read(ctx)
			if err != nil {
				return
			}
			if first {
				first = false
				if f, ok := fault(faults, Delay); ok && !sleep(ctx, f.Delay) {
					return
				}
			}
			if err := conn.Write(ctx, typ, data); err != nil {
				return
			}
			content := strings.Contains(string(data), `"output_audio"`) || strings.Contains(string(data), `_transcript"`)
			if _, ok := fault(faults, Disconnect); ok && content {
				conn.CloseNow()
				return
			}
		}
	}()
	for { // client -> upstream
		_, data, err := conn.Read(ctx)
		if err != nil {
			return
		}
		m, err := ss.check(data)
		if err != nil {
			ss.failRead(err)
			return
		}
		if err := up.Write(ctx, websocket.MessageText, data); err != nil {
			return
		}
		if str(m, "type") == "session.close" {
			// Nothing more reaches the client: the upstream's answer
			// would arrive after it closed its stream.
			stop()
			up.Close(websocket.StatusNormalClosure, "")
			conn.Close(websocket.StatusNormalClosure, "")
			return
		}
	}
}

// readLimit bounds one upstream message (TTS audio frames).
const readLimit = 4 << 20
