// Package localgw is voicetui's embedded inference gateway: a local server
// that speaks the LiveKit Inference protocol exactly (GATEWAY_PROTOCOL.md),
// so the very same clients talk to it and to the real gateway. Its engines
// are honest demos, not models: TTS is real speech from espeak-ng, STT is
// energy-based speech detection whose text comes from a script or says it
// is simulated, the LLM is a small deterministic agent.
//
// Its reason to exist is the quota demo: rules (Policy) make it refuse
// requests with the gateway's exact quota bodies, at the WebSocket
// handshake for STT and TTS as the real gateway does, and misbehave on
// purpose (latency, 5xx, disconnects, stalls, malformed frames). Rules are
// set by flags or at run time through a loopback-only control endpoint.
package localgw

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

// Default credentials: the embedded gateway is local, these keep the
// token path the same as production.
const (
	DefaultKey    = "devkey"
	DefaultSecret = "secret"
	DefaultAddr   = "127.0.0.1:7890"
)

// Options configure a gateway. The zero value works (defaults below).
type Options struct {
	Key, Secret string        // for checking tokens (default devkey/secret)
	TokenDelay  time.Duration // LLM: pause between streamed words (default 30 ms; negative: none)
	STTScript   []string      // STT: transcripts to return, one per utterance, in order
	STTEngine   STTEngine     // STT without a script: auto (default), pocketsphinx or energy
	Quotas      []QuotaRule
	Faults      []FaultRule
	Log         *slog.Logger // nil: discard
	// Upstream, when set, is a real gateway the requests the rules let
	// through are passed on to (upstream.go).
	Upstream *Upstream
	// ControlToken is what the control endpoint requires in the
	// X-Voicetui-Control header; "" makes a random one (ControlToken()).
	ControlToken string
	// TTS engine; nil means espeak-ng (New fails when it is missing).
	Speech Synthesizer
	// OnRefused, when set, hears every quota refusal as it is answered
	// (a rule's, or the upstream's 429), with its body: a client that
	// only sees a label from the agent (console mode) shows the real one.
	// It must not block.
	OnRefused func(Refused)
}

// Refused is one quota refusal the gateway answered.
type Refused struct {
	At     time.Time
	Stage  Stage
	Status int // 429
	Header http.Header
	Body   []byte            // the quota body, as sent
	Client map[string]string // who asked (job-id, agent-id, ...), as in the journal
}

// refused tells Options.OnRefused of a refusal answered to r.
func (s *Server) refused(r *http.Request, stage Stage, status int, h http.Header, body []byte) {
	if s.opts.OnRefused == nil || status != http.StatusTooManyRequests {
		return
	}
	rf := Refused{At: time.Now(), Stage: stage, Status: status, Header: h.Clone(), Body: append([]byte(nil), body...)}
	if r != nil {
		rf.Client = clientOf(r)
	}
	s.opts.OnRefused(rf)
}

// Server is a running gateway.
type Server struct {
	opts    Options
	policy  *Policy
	speech  Synthesizer
	log     *slog.Logger
	journal *journal
	pool    *sphinx.Pool // pocketsphinx decoders; nil: none (a script, or the energy detector)
	srv     *http.Server
	ln      net.Listener

	llmRequests, llmTokens atomic.Int64 // for the usage headers
	sessionIDs             atomic.Int64
	base                   context.Context
	stop                   context.CancelFunc // ends every session (hijacked sockets too)
	sessions               sync.WaitGroup

	mu     sync.Mutex
	script []string // lines not yet used
}

// New checks the options and the TTS engine; Start serves.
func New(opts Options) (*Server, error) {
	if opts.Key == "" {
		opts.Key = DefaultKey
	}
	if opts.Secret == "" {
		opts.Secret = DefaultSecret
	}
	if opts.TokenDelay == 0 {
		opts.TokenDelay = 30 * time.Millisecond
	}
	tts := opts.Speech
	if tts == nil {
		var err error
		if tts, err = NewEspeak(); err != nil {
			return nil, err
		}
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Upstream != nil {
		u := *opts.Upstream
		if err := u.check(); err != nil {
			return nil, err
		}
		opts.Upstream = &u
	}
	engine, err := sttEngine(opts)
	if err != nil {
		return nil, err
	}
	if opts.ControlToken == "" {
		opts.ControlToken = rand.Text()
	}
	s := &Server{opts: opts, policy: &Policy{}, speech: tts, log: log, journal: &journal{log: log},
		script: append([]string(nil), opts.STTScript...)}
	if engine == EnginePocketsphinx {
		s.pool = sphinx.NewPool(sphinx.Config{}, recognizers)
	}
	for _, r := range opts.Quotas {
		s.policy.AddQuota(r)
	}
	for _, r := range opts.Faults {
		s.policy.AddFault(r)
	}
	return s, nil
}

// Policy is the server's rule set (the control endpoint edits it too).
func (s *Server) Policy() *Policy { return s.policy }

// Handler serves the protocol under /v1 and the control endpoint under
// /control.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/chat/completions", s.authed(s.serveChat))
	mux.Handle("GET /v1/models", s.authed(s.serveModels))
	mux.Handle("GET /v1/stt", s.authed(s.serveSTT))
	mux.Handle("GET /v1/tts", s.authed(s.serveTTS))
	mux.Handle("GET /v1/eot", s.authed(s.serveMissingModel("eot", "end-of-turn")))
	mux.Handle("GET /v1/bargein", s.authed(s.serveMissingModel("bargein", "barge-in")))
	mux.Handle("/control/", s.controlGuard(s.control()))
	return mux
}

// Start listens on addr ("127.0.0.1:0" picks a free port) and serves in
// the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("embedded gateway: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.base, s.stop = context.WithCancel(context.Background())
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return s.base }}
	go s.srv.Serve(ln)
	if s.pool != nil {
		// No decoder is loaded before the first utterance needs one (it
		// loads while the user speaks: words.go); its model files are made
		// ready now, which holds no decoder's memory.
		s.sessions.Add(1)
		go func() {
			defer s.sessions.Done()
			if err := s.pool.Prepare(); err != nil && s.base.Err() == nil {
				s.log.Warn("stt: the recogniser's model is not ready", "error", err)
			}
		}()
	}
	return nil
}

// URL is the base URL clients use, ending in /v1.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/v1" }

// ControlURL is the base of the control endpoint.
func (s *Server) ControlURL() string { return "http://" + s.ln.Addr().String() + "/control" }

// STTEngine names where the STT's words come from: "scripted",
// "pocketsphinx" or "energy".
func (s *Server) STTEngine() string {
	switch {
	case len(s.opts.STTScript) > 0:
		return "scripted"
	case s.pool != nil:
		return string(EnginePocketsphinx)
	}
	return string(EngineEnergy)
}

// ControlToken is what a control request must carry in its
// X-Voicetui-Control header.
func (s *Server) ControlToken() string { return s.opts.ControlToken }

// Close stops serving and ends open sessions, waiting for them within ctx.
// A server that was never started may be closed too.
//
// Every handler watches the base context that stop cancels, so a short
// grace suffices; after it the rest is closed: net/http's Shutdown would
// otherwise wait 5 s for a connection a client dialled but never used.
func (s *Server) Close(ctx context.Context) error {
	if s.srv == nil { // never started: only the recogniser pool to free
		if s.pool != nil {
			s.pool.Close()
		}
		return nil
	}
	s.stop()
	grace, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	err := s.srv.Shutdown(grace)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close()
	}
	done := make(chan struct{})
	go func() { s.sessions.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.pool != nil {
		s.pool.Close() // the sessions gave their decoders back
	}
	return err
}

// authed checks the access token as the real gateway does.
func (s *Server) authed(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			s.journal.note(r, stageOf(r.URL.Path), http.StatusUnauthorized, "unauthorized: no bearer token")
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing access token: send Authorization: Bearer <token>"})
			return
		}
		if err := gateway.VerifyToken(tok, s.opts.Key, s.opts.Secret, time.Now()); err != nil {
			s.journal.note(r, stageOf(r.URL.Path), http.StatusUnauthorized, "unauthorized: "+err.Error())
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid access token: " + err.Error()})
			return
		}
		next(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// refuse writes a quota refusal as an HTTP response to req (also before
// a WebSocket upgrade).
func (s *Server) refuse(w http.ResponseWriter, req *http.Request, stage Stage, r Refusal) {
	for k, v := range r.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.Status)
	w.Write(r.Body)
	s.refused(req, stage, r.Status, r.Header, r.Body)
}

func (s *Server) serveModels(w http.ResponseWriter, r *http.Request) {
	if s.opts.Upstream != nil {
		s.passHTTP(w, r, "models", "/models", nil, nil)
		return
	}
	s.journal.note(r, "models", http.StatusOK, "served")
	type model struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		OwnedBy string `json:"owned_by"`
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []model{
		{LLMModel, "model", "voicetui"}, {STTModel, "model", "voicetui"}, {TTSModel, "model", "voicetui"},
	}})
}

// Model names the embedded gateway reports; it accepts any name.
const (
	LLMModel = "embedded/demo-agent"
	STTModel = "embedded/energy-stt"
	TTSModel = "embedded/espeak-ng"
)

// peekScriptLine returns the next scripted transcript without using it.
func (s *Server) peekScriptLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return ""
	}
	return s.script[0]
}

// nextScriptLine returns the next scripted transcript; "" when the
// script is absent or used up.
func (s *Server) nextScriptLine() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return ""
	}
	line := s.script[0]
	s.script = s.script[1:]
	return line
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// stageOf names what a request path asks for, for the journal.
func stageOf(path string) string {
	p := strings.TrimPrefix(path, "/v1/")
	switch p {
	case "chat/completions":
		return "llm"
	case "stt", "tts", "models", "eot", "bargein":
		return p
	}
	return p
}

// serveMissingModel answers the end-of-turn and barge-in model sockets
// that LiveKit's cloud gateway serves and this one does not: 404 with a
// JSON reason, which agents-js 1.9.0 takes as "no remote model" and falls
// back to its local turn detection. A bargein credits or rate rule is
// answered here as the real gateway would, with its quota body.
func (s *Server) serveMissingModel(stage, what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if stage == "bargein" {
			if refused, _ := s.policy.Admit(BargeIn); refused != nil {
				s.journal.note(r, stage, http.StatusTooManyRequests, "quota rule "+refused.String())
				s.refuse(w, r, BargeIn, refused.refusal())
				return
			}
		}
		s.journal.note(r, stage, http.StatusNotFound, "no "+what+" model in the embedded gateway")
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "the embedded gateway has no " + what + " model; clients use their local one"})
	}
}

// recognizers bounds the pocketsphinx decoders alive at once (about 21 MB
// each). A decoder is held for an utterance, not a socket, so one serves
// a conversation and its reconnects; a second is loaded only for two
// utterances at once (two sockets hearing speech together) and closed
// when the overlap is over.
const recognizers = 2

// sttEngine is the STT engine opts ask for and this machine has: with a
// script, none is needed; auto takes pocketsphinx when it is installed.
func sttEngine(opts Options) (STTEngine, error) {
	if len(opts.STTScript) > 0 {
		return EngineEnergy, nil
	}
	switch opts.STTEngine {
	case "", EngineAuto:
		if err := sphinx.Available(); err != nil {
			log := opts.Log
			if log != nil {
				log.Info("stt: no speech recognition, the energy detector says what it heard", "reason", err)
			}
			return EngineEnergy, nil
		}
		return EnginePocketsphinx, nil
	case EnginePocketsphinx:
		if err := sphinx.Available(); err != nil {
			return "", fmt.Errorf("embedded gateway: --stt-engine pocketsphinx: %w", err)
		}
		return EnginePocketsphinx, nil
	case EngineEnergy:
		return EngineEnergy, nil
	}
	return "", fmt.Errorf("embedded gateway: --stt-engine %q: want auto, pocketsphinx or energy", opts.STTEngine)
}
