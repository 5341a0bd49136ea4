package qa

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/conversation"
)

// judge compares a class's session with its expectation.
func judge(res *Result, run *sessionRun, render func([]conversation.Event) string) {
	x := res.Class.Expect
	problems := append([]string(nil), run.problems...)
	fail := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	var closeEv *conversation.Close
	var fallbacks []conversation.Fallback
	var errs []conversation.Error
	replied, retried := false, false
	for _, e := range run.events {
		switch p := e.Payload.(type) {
		case conversation.Close:
			closeEv = &p
		case conversation.Fallback:
			fallbacks = append(fallbacks, p)
		case conversation.Error:
			errs = append(errs, p)
			retried = retried || p.Retryable && p.RetryInMs > 0
		case conversation.Metrics:
			replied = true // a reply played to its end
		}
	}
	switch {
	case closeEv == nil:
		fail("the session never closed (%v)", run.err)
	case closeEv.Reason != x.Close:
		fail("closed with reason %q, want %q", closeEv.Reason, x.Close)
	}
	if x.Reply && !replied {
		fail("no reply played")
	}
	if !x.Reply && replied {
		fail("a reply played, want none")
	}
	if x.Retried && !retried {
		fail("no error event says it is retried")
	}
	if x.Error == "" && len(errs) > 0 {
		fail("an error event (%s: %s), want none", errs[0].Stage, errs[0].Message)
	}
	if x.Error != "" {
		found := false
		for _, e := range errs {
			if (e.Stage == x.Error || x.Error == AnyStage) && (!x.Terminal || e.Terminal) {
				found = true
				if x.Category != "" {
					checkCategory(e, x.Category, fail)
				}
				break
			}
		}
		if !found {
			want := x.Error
			if x.Terminal {
				want += ", terminal"
			}
			fail("no error event of stage %s", want)
		}
	}

	// What was heard: the expected clip, at the speaker, sample for
	// sample; and when, after the failure it answers.
	if x.Clip == "" {
		if len(fallbacks) > 0 {
			fail("heard %s (%s), want nothing", fallbacks[0].Clip, fallbacks[0].Reason)
		}
	} else {
		var fb *conversation.Fallback
		for i := range fallbacks {
			if fallbacks[i].Clip == string(x.Clip) {
				fb = &fallbacks[i]
				break
			}
		}
		switch {
		case fb == nil:
			fail("no %s played (fallback events: %v)", x.Clip, fallbacks)
		case fb.Reason != x.Reason:
			fail("%s played for %q, want %q", x.Clip, fb.Reason, x.Reason)
		case !fb.OK:
			fail("%s did not reach the speaker: %s", x.Clip, fb.Error)
		}
		if _, ok := findClip(run.speaker, x.Clip); !ok {
			fail("the %s clip is not in the speaker's timeline", x.Clip)
		} else {
			res.Heard = string(x.Clip)
		}
		// When its first sound went to the speaker, after the failure.
		if k, ok := findClip(run.written, x.Clip); ok {
			if i := failureIndex(run.events); i >= 0 {
				if at := writtenAt(run.writes, k); at >= 0 {
					res.Signal = at - run.events[i].T
				}
			}
		}
	}
	if render != nil {
		i := failureIndex(run.events)
		if i < 0 {
			i = len(run.events) - 1
		}
		if i >= 0 {
			res.Status = render(run.events[:i+1])
		}
		end := render(run.events)
		for _, want := range x.Status {
			if !strings.Contains(res.Status, want) && !strings.Contains(end, want) {
				fail("the status pane lacks %q", want)
			}
		}
	}
	res.Problems = problems
	res.Pass = len(problems) == 0
}

// findClip finds the bundled clip in audio (the speaker's timeline, or
// what was written to it): it is written unchanged (16 kHz both), so its
// samples appear verbatim. It returns the index of its first sound (its
// first sample that is not silence).
func findClip(timeline []int16, c fallback.Clip) (int, bool) {
	clip, err := fallback.Samples(c, fallback.Options{})
	if err != nil || len(clip) == 0 {
		return 0, false
	}
	start := 0
	for start < len(clip) && math.Abs(float64(clip[start])) < 2000 {
		start++ // a needle from where the clip is loud: silence matches anywhere
	}
	needle := clip[start:min(start+400, len(clip))]
	if len(needle) == 0 {
		return 0, false
	}
	// The clip's first sound: its first sample that is not silence.
	sound := slices.IndexFunc(clip, func(v int16) bool { return v != 0 })
	for i := 0; i+len(needle) <= len(timeline); i++ {
		if timeline[i] == needle[0] && slices.Equal(timeline[i:i+len(needle)], needle) {
			return max(i-start+sound, 0), true
		}
	}
	return 0, false
}

// checkCategory: the quota body as the user is shown it.
func checkCategory(e conversation.Error, want string, fail func(string, ...any)) {
	got := NoCategory
	if e.Quota == nil {
		fail("the error carries no quota")
		return
	}
	if e.Quota.Category != "" {
		got = e.Quota.Category
	}
	if got != want {
		fail("the quota category is %q, want %q", got, want)
	}
}
