// Package qa runs the failure matrix behind `voicetui qa`: one scripted
// session per failure class against a gateway with the embedded
// gateway's control endpoint (an in-process one per class by default),
// each keeping its events, what reached the speaker and what the status
// pane showed, judged against what the failure table of docs/failures-and-events.md promises.
package qa

import "github.com/voicetui/voicetui/fallback"

// Class is one failure to exercise and what the user must get.
type Class struct {
	Name  string // folder and --only name
	Title string
	// Rules set through the control endpoint before the session starts.
	Quota, Fault []string
	// WrongSecret signs the client's tokens with a secret the gateway does
	// not know (401).
	WrongSecret bool
	Expect      Expectation
}

// Expectation is the failure table of docs/failures-and-events.md, for one class.
type Expectation struct {
	Summary string // for the report, in the table's words
	Close   string // the close event's reason
	// Clip is the signal heard (its fallback event says Reason, and its
	// samples are in the speaker's timeline); "" for none.
	Clip   fallback.Clip
	Reason string
	// Error is the stage an error event must name (AnyStage: any; "" for
	// none at all); Terminal and Retried qualify it.
	Error    string
	Terminal bool
	Retried  bool // an error event says it is retried (retryable)
	// Category is the quota category that error carries (NoCategory: a
	// quota without one, its malformed fields dropped; "": not checked).
	Category string
	Reply    bool // the agent's reply comes, whole
	// Status is text the status pane shows at the failure.
	Status []string
}

// NoCategory expects a quota error whose category was dropped.
const NoCategory = "(none)"

// AnyStage accepts an error of any stage (a 401 is the first request's,
// whichever stage that is).
const AnyStage = "*"

// Classes is the matrix, in report order.
var Classes = []Class{
	{Name: "happy", Title: "happy path",
		Expect: Expectation{Summary: "the reply plays; no error, no clip", Close: "input_ended", Reply: true}},
	{Name: "llm_credits", Title: "LLM credits used up", Quota: []string{"llm:credits"},
		Expect: Expectation{Summary: "terminal at the first 429: the quota clip, the hint shown, closed", Close: "error",
			Clip: fallback.Quota, Reason: "quota_exhausted", Error: "llm", Terminal: true, Category: "MaxGatewayCredits",
			Status: []string{"TERMINAL", "HTTP 429", "MaxGatewayCredits", "You're out of credits", "session closed (error)"}}},
	{Name: "stt_credits", Title: "STT credits used up", Quota: []string{"stt:credits"},
		Expect: Expectation{Summary: "terminal at the first 429: the quota clip, the hint shown, closed", Close: "error",
			Clip: fallback.Quota, Reason: "quota_exhausted", Error: "stt", Terminal: true, Category: "MaxGatewayCredits",
			Status: []string{"TERMINAL", "HTTP 429", "MaxGatewayCredits", "session closed (error)"}}},
	{Name: "tts_credits", Title: "TTS credits used up", Quota: []string{"tts:credits"},
		Expect: Expectation{Summary: "terminal at the first 429 (TTS cannot say it: the recording plays), closed", Close: "error",
			Clip: fallback.Quota, Reason: "quota_exhausted", Error: "tts", Terminal: true, Category: "MaxGatewayCredits",
			Status: []string{"TERMINAL", "HTTP 429", "MaxGatewayCredits", "session closed (error)"}}},
	{Name: "rate_brief", Title: "rate limit, brief", Quota: []string{"llm:rate:count=1"},
		Expect: Expectation{Summary: "transient: retried, then the reply plays; nothing else heard", Close: "input_ended",
			Error: "llm", Retried: true, Reply: true, Category: "MaxConcurrentGatewayLLMRpm"}},
	{Name: "rate_persistent", Title: "rate limit, persistent", Quota: []string{"llm:rate"},
		Expect: Expectation{Summary: "retried until the retries run out: the turn fails with the earcon, the session goes on", Close: "input_ended",
			Clip: fallback.EarconFailed, Reason: "turn_failed", Error: "llm", Retried: true,
			Status: []string{"HTTP 429", "MaxConcurrentGatewayLLMRpm"}}},
	{Name: "quota_malformed", Title: "malformed quota body", Quota: []string{"llm:malformed:count=1"},
		Expect: Expectation{Summary: "transient (its fields absent, nothing garbled): retried, the reply plays", Close: "input_ended",
			Error: "llm", Retried: true, Reply: true, Category: NoCategory}},
	{Name: "quota_unknown", Title: "unknown quota category", Quota: []string{"llm:unknown:count=1"},
		Expect: Expectation{Summary: "transient (fail open): retried, the reply plays", Close: "input_ended",
			Error: "llm", Retried: true, Reply: true, Category: "MaxGatewayFutureLimit"}},
	{Name: "unauthorized", Title: "wrong credentials (401)", WrongSecret: true,
		Expect: Expectation{Summary: "terminal at the first response: the unavailable clip, closed", Close: "error",
			Clip: fallback.Unavailable, Reason: "credentials", Error: AnyStage, Terminal: true,
			Status: []string{"TERMINAL", "HTTP 401", "session closed (error)"}}},
	{Name: "server_error_once", Title: "5xx once", Fault: []string{"llm:5xx:count=1"},
		Expect: Expectation{Summary: "transient: retried, then the reply plays", Close: "input_ended",
			Error: "llm", Retried: true, Reply: true}},
	{Name: "llm_stall", Title: "LLM stream stalls", Fault: []string{"llm:stall"},
		Expect: Expectation{Summary: "the stream stops after a token: timed out, the turn fails with the earcon", Close: "input_ended",
			Clip: fallback.EarconFailed, Reason: "turn_failed", Error: "llm", Status: []string{"LLM error"}}},
	{Name: "llm_disconnect", Title: "LLM disconnects mid-stream", Fault: []string{"llm:disconnect"},
		Expect: Expectation{Summary: "the connection drops after a token: the turn fails with the earcon", Close: "input_ended",
			Clip: fallback.EarconFailed, Reason: "turn_failed", Error: "llm", Status: []string{"LLM error"}}},
	{Name: "finalize_never", Title: "final transcript never comes", Fault: []string{"stt:delay=30s"},
		Expect: Expectation{Summary: "3 s after finalize: timed out, the earcon, the STT stream replaced", Close: "input_ended",
			Clip: fallback.EarconFailed, Reason: "stt_failed", Error: "stt", Status: []string{"STT error"}}},
	{Name: "tts_keepalive", Title: "TTS sends keepalives only", Fault: []string{"tts:keepalive"},
		Expect: Expectation{Summary: "10 s without audio: timed out, the turn fails with the earcon", Close: "input_ended",
			Clip: fallback.EarconFailed, Reason: "turn_failed", Error: "tts", Status: []string{"TTS error"}}},
}
