package conversation

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/agentwatch"
)

type alarmErr struct {
	msg      string
	terminal bool
}

func (e *alarmErr) Error() string { return e.msg }
func (e *alarmErr) Describe() Error {
	return Error{Stage: "agent", Message: e.msg, Terminal: e.terminal}
}

// The one way remote conversations answer their watchdog: the earcon for
// what they survive, the clip when the agent gave up, the end for a
// terminal alarm or one failure too many.
func TestAlarmsSoundAndCount(t *testing.T) {
	var mu sync.Mutex
	var evs []Event
	events := NewEmitter(func(e Event) { mu.Lock(); evs = append(evs, e); mu.Unlock() })
	spk, err := audio.NewClockSink(audio.Format{SampleRate: audio.PipelineRate, Channels: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer spk.Close()
	x := &Alarms{Player: &FallbackPlayer{Speaker: spk, Events: events}, Events: events, MaxUnrecoverable: 1}
	describe := func(msg string, terminal bool) error { return &alarmErr{msg, terminal} }

	if err := x.Raise(&agentwatch.Alarm{Kind: agentwatch.AgentError, Message: "errors"}, describe); err != nil {
		t.Fatal(err)
	}
	if err := x.Raise(&agentwatch.Alarm{Kind: agentwatch.NoAnswer, Message: "no answer", GaveUp: true, Failure: true}, describe); err != nil {
		t.Fatal(err)
	}
	x.Close(nil) // the clip has played
	x.Player.Wait()
	err = x.Raise(&agentwatch.Alarm{Kind: agentwatch.DeadAir, Message: "late", Failure: true}, describe)
	var ae *alarmErr
	if !errors.As(err, &ae) || !ae.terminal || !strings.HasSuffix(ae.msg, "(2 times in a row)") {
		t.Fatalf("the second failure in a row: %v", err)
	}
	x.Answered()
	if x.Attempt() != 1 {
		t.Fatalf("attempt %d after an answer", x.Attempt())
	}
	if err := x.Raise(&agentwatch.Alarm{Kind: agentwatch.AgentLeft, Message: "left", Terminal: true}, describe); err == nil {
		t.Fatal("a terminal alarm did not end it")
	}
	mu.Lock()
	defer mu.Unlock()
	var sounds []string
	var errs int
	for _, e := range evs {
		switch p := e.Payload.(type) {
		case Fallback:
			sounds = append(sounds, p.Clip+"/"+p.Reason)
		case Error:
			errs++
			if p.Retryable != strings.Contains(p.Message, "errors") {
				t.Errorf("retryable %v for %q", p.Retryable, p.Message)
			}
		}
	}
	if strings.Join(sounds, " ") != "earcon_failed/agent_error unavailable/unavailable" || errs != 2 {
		t.Fatalf("sounds %q, %d error events", sounds, errs)
	}
}
