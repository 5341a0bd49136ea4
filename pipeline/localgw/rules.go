package localgw

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Stage is what a rule applies to: a quota_type of the gateway.
type Stage string

const (
	LLM     Stage = "llm"
	STT     Stage = "stt"
	TTS     Stage = "tts"
	BargeIn Stage = "bargein" // enforced on the STT endpoint, where a barge-in model would listen
)

// QuotaKind is what a quota rule answers with.
type QuotaKind string

const (
	Credits   QuotaKind = "credits"   // terminal: MaxGatewayCredits (MaxBargeInRequests for bargein)
	Rate      QuotaKind = "rate"      // transient: MaxConcurrentGateway…, with Retry-After
	Unknown   QuotaKind = "unknown"   // a category no client knows
	Malformed QuotaKind = "malformed" // a list-valued category, a numeric remaining_limit
)

// FaultKind is a misbehaviour of the gateway.
type FaultKind string

const (
	Delay      FaultKind = "delay"      // added latency: LLM first token, TTS first audio, STT final
	ServerErr  FaultKind = "5xx"        // HTTP 503 (at the handshake for STT and TTS)
	Disconnect FaultKind = "disconnect" // the connection drops after the first content
	Stall      FaultKind = "stall"      // the stream stops after the first content, open
	BadFrame   FaultKind = "malformed"  // a malformed SSE event or WebSocket message
	KeepAlive  FaultKind = "keepalive"  // the stream stays busy without an answer: SSE comments, TTS messages without audio
)

// window is the part of a rule that says which requests it hits: those
// after the first After requests (counted from when the rule was set),
// Count of them, or all when Count is 0.
type window struct {
	After, Count int
	seen         int
}

func (w *window) hits(n int) bool  { return n > w.After && (w.Count == 0 || n <= w.After+w.Count) }
func (w *window) spent(n int) bool { return w.Count > 0 && n >= w.After+w.Count }

// QuotaRule refuses requests of a stage with a quota body.
type QuotaRule struct {
	Stage Stage
	Kind  QuotaKind
	window
	gen int // when it was set (Policy.Generation)
}

// FaultRule makes requests of a stage misbehave.
type FaultRule struct {
	Stage Stage
	Kind  FaultKind
	Delay time.Duration // for Delay
	window
}

func (r QuotaRule) String() string { return ruleString(string(r.Stage), string(r.Kind), r.window) }
func (r FaultRule) String() string {
	kind := string(r.Kind)
	if r.Kind == Delay {
		kind += "=" + r.Delay.String()
	}
	return ruleString(string(r.Stage), kind, r.window)
}

func ruleString(stage, kind string, w window) string {
	s := stage + ":" + kind
	if w.After > 0 {
		s += ":after=" + strconv.Itoa(w.After)
	}
	if w.Count > 0 {
		s += ":count=" + strconv.Itoa(w.Count)
	}
	return s
}

// ParseQuota reads STAGE:KIND[:after=N][:count=K], e.g. "llm:credits",
// "tts:credits:after=3", "llm:rate:count=2", "stt:unknown".
func ParseQuota(s string) (QuotaRule, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) < 2 {
		return QuotaRule{}, fmt.Errorf("quota rule %q: want STAGE:KIND[:after=N][:count=K], e.g. llm:credits", s)
	}
	r := QuotaRule{Stage: Stage(parts[0]), Kind: QuotaKind(parts[1])}
	switch r.Stage {
	case LLM, STT, TTS, BargeIn:
	default:
		return r, fmt.Errorf("quota rule %q: stage %q is not llm, stt, tts or bargein", s, parts[0])
	}
	switch r.Kind {
	case Credits, Rate, Unknown, Malformed:
	default:
		return r, fmt.Errorf("quota rule %q: kind %q is not credits, rate, unknown or malformed", s, parts[1])
	}
	w, err := parseWindow(s, parts[2:])
	r.window = w
	return r, err
}

// ParseFault reads STAGE:KIND[:after=N][:count=K] where KIND is
// delay=DURATION, 5xx, disconnect, stall, keepalive or malformed; e.g.
// "llm:delay=800ms", "tts:stall", "llm:5xx:count=1".
func ParseFault(s string) (FaultRule, error) {
	parts := strings.Split(strings.TrimSpace(s), ":")
	if len(parts) < 2 {
		return FaultRule{}, fmt.Errorf("fault rule %q: want STAGE:KIND[:after=N][:count=K], e.g. llm:delay=500ms", s)
	}
	r := FaultRule{Stage: Stage(parts[0])}
	kind, value, hasValue := strings.Cut(parts[1], "=")
	r.Kind = FaultKind(kind)
	switch r.Stage {
	case LLM, STT, TTS:
	default:
		return r, fmt.Errorf("fault rule %q: stage %q is not llm, stt or tts", s, parts[0])
	}
	switch r.Kind {
	case Delay:
		d, err := time.ParseDuration(value)
		if !hasValue || err != nil || d <= 0 || d > time.Minute {
			return r, fmt.Errorf("fault rule %q: want delay=DURATION between 0 and 1m, e.g. delay=500ms", s)
		}
		r.Delay = d
	case ServerErr, Disconnect, Stall, BadFrame, KeepAlive:
		if hasValue {
			return r, fmt.Errorf("fault rule %q: %s takes no value", s, kind)
		}
	default:
		return r, fmt.Errorf("fault rule %q: kind %q is not delay=DURATION, 5xx, disconnect, stall, keepalive or malformed", s, kind)
	}
	if r.Stage == STT && (r.Kind == Stall || r.Kind == KeepAlive) {
		return r, fmt.Errorf("fault rule %q: an STT stream has no timeout to stall or keep alive (silence is normal); try stt:delay or stt:disconnect", s)
	}
	w, err := parseWindow(s, parts[2:])
	r.window = w
	return r, err
}

func parseWindow(rule string, opts []string) (window, error) {
	var w window
	for _, o := range opts {
		k, v, _ := strings.Cut(o, "=")
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || (k == "count" && n == 0) {
			return w, fmt.Errorf("rule %q: %q wants a whole number (count at least 1)", rule, o)
		}
		switch k {
		case "after":
			w.After = n
		case "count":
			w.Count = n
		default:
			return w, fmt.Errorf("rule %q: option %q is not after=N or count=K", rule, k)
		}
	}
	return w, nil
}

// Policy holds the active rules. Every request of a stage is counted by
// each rule of that stage set before it; a rule whose window has passed
// is dropped (the quota recovered).
type Policy struct {
	mu     sync.Mutex
	quotas []*QuotaRule
	faults []*FaultRule
	gen    int // counts rules set
}

// AddQuota and AddFault take effect from the next request.
func (p *Policy) AddQuota(r QuotaRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	r.gen = p.gen
	p.quotas = append(p.quotas, &r)
}

// Generation numbers the rules set so far.
func (p *Policy) Generation() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// CreditsSince returns a credits rule of stage (or of the quota stages its
// endpoint answers for) set after generation gen that would refuse the
// next request, and counts that request for it: an open socket meets the
// rules set while it was open.
func (p *Policy) CreditsSince(stage Stage, gen int) *QuotaRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range quotaStages(stage) {
		for _, r := range p.quotas {
			if r.Stage == s && r.Kind == Credits && r.gen > gen && r.hits(r.seen+1) {
				r.seen++
				c := *r
				return &c
			}
		}
	}
	return nil
}

func (p *Policy) AddFault(r FaultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append(p.faults, &r)
}

// Reset removes every rule (quota restored, faults gone).
func (p *Policy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.quotas, p.faults = nil, nil
}

// Rules lists the active rules in the syntax of the flags.
func (p *Policy) Rules() (quotas, faults []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	quotas, faults = []string{}, []string{}
	for _, r := range p.quotas {
		quotas = append(quotas, r.String())
	}
	for _, r := range p.faults {
		faults = append(faults, r.String())
	}
	return quotas, faults
}

// quotaStage is the quota a stage's endpoint consults: the STT endpoint
// also answers for barge-in.
func quotaStages(s Stage) []Stage {
	if s == STT {
		return []Stage{BargeIn, STT}
	}
	return []Stage{s}
}

// Admit counts one request of stage and returns the quota rule that
// refuses it (or nil) and the faults that apply to it.
func (p *Policy) Admit(stage Stage) (*QuotaRule, []FaultRule) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var refused *QuotaRule
	for _, s := range quotaStages(stage) {
		p.quotas = slices.DeleteFunc(p.quotas, func(r *QuotaRule) bool {
			if r.Stage != s {
				return false
			}
			r.seen++
			if refused == nil && r.hits(r.seen) {
				c := *r
				refused = &c
			}
			return r.spent(r.seen)
		})
	}
	var faults []FaultRule
	p.faults = slices.DeleteFunc(p.faults, func(r *FaultRule) bool {
		if r.Stage != stage {
			return false
		}
		r.seen++
		if r.hits(r.seen) {
			faults = append(faults, *r)
		}
		return r.spent(r.seen)
	})
	return refused, faults
}

// Blocked returns the quota rule that would refuse the next request of
// stage, without counting it.
func (p *Policy) Blocked(stage Stage) *QuotaRule {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range quotaStages(stage) {
		for _, r := range p.quotas {
			if r.Stage == s && r.hits(r.seen+1) {
				c := *r
				return &c
			}
		}
	}
	return nil
}

// fault returns the first fault of kind among faults.
func fault(faults []FaultRule, kind FaultKind) (FaultRule, bool) {
	for _, f := range faults {
		if f.Kind == kind {
			return f, true
		}
	}
	return FaultRule{}, false
}

// Refusal is the gateway's answer to a refused request: status, headers
// and the quota body in exactly the shape of BACKGROUND.md.
type Refusal struct {
	Status int
	Header http.Header
	Body   []byte
}

var stageNames = map[Stage]string{LLM: "LLM", STT: "STT", TTS: "TTS", BargeIn: "Barge-in"}

// refusal builds the wire response of rule r.
func (r QuotaRule) refusal() Refusal {
	name := stageNames[r.Stage]
	h := http.Header{}
	body := map[string]any{
		"type": "inference_quota_exceeded", "quota_type": string(r.Stage), "remaining_limit": "0",
		"current_usage": "1000", "status": "QuotaStatusExceeded", "free_tier": "true",
		"documentation_url": "https://livekit.com/pricing",
	}
	switch r.Kind {
	case Credits:
		category := "MaxGatewayCredits"
		if r.Stage == BargeIn {
			category = "MaxBargeInRequests"
		}
		body["category"] = category
		body["error"] = fmt.Sprintf("%s credit quota exceeded, category: %s, remaining_limit: 0", name, category)
		body["hint"] = "You're out of credits. Upgrade your plan or wait for the next cycle."
	case Rate:
		category := map[Stage]string{LLM: "MaxConcurrentGatewayLLMRpm", STT: "MaxConcurrentGatewaySTT",
			TTS: "MaxConcurrentGatewayTTS", BargeIn: "MaxConcurrentGatewayBargeIn"}[r.Stage]
		body["category"] = category
		body["error"] = fmt.Sprintf("%s request rate limit exceeded, category: %s, remaining_limit: 0", name, category)
		body["hint"] = name + " request rate limit reached. Reduce request rate or upgrade your plan."
		h.Set("Retry-After", "1")
	case Unknown:
		body["category"] = "MaxGatewayFutureLimit"
		body["error"] = name + " quota exceeded, category: MaxGatewayFutureLimit"
		body["hint"] = "A limit this client does not know was reached."
	case Malformed:
		body["category"] = []string{"MaxGatewayCredits"}
		body["remaining_limit"] = 0
		body["hint"] = map[string]any{"text": "not a string"}
		body["error"] = name + " quota exceeded"
	}
	b, _ := json.Marshal(body)
	h.Set("Content-Type", "application/json")
	return Refusal{Status: http.StatusTooManyRequests, Header: h, Body: b}
}
