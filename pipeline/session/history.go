package session

import "github.com/voicetui/voicetui/pipeline/provider"

// The conversation so far is resent with every turn, so it is bounded: a
// long session would otherwise grow its cost without end and outgrow the
// model's context. The system prompt is always kept; the oldest turns go
// first, whole (a user message with the answers after it).

// Default history budget.
const (
	DefaultHistoryTurns = 20    // user turns kept, with their answers
	DefaultHistoryChars = 24000 // about 6000 tokens, at ~4 characters a token
)

// bounded returns history cut to the budget: the system prompt (when
// history starts with one), then the newest messages from a user message
// on, with at most turns user messages and chars characters. The last
// user message is kept whatever its length: it is the turn being asked.
func bounded(history []provider.Message, turns, chars int) []provider.Message {
	head := 0
	if len(history) > 0 && history[0].Role == "system" {
		head = 1
	}
	start := len(history) // the oldest message kept
	users, size := 0, 0
	for i := len(history) - 1; i >= head; i-- {
		size += len(history[i].Content)
		if history[i].Role != "user" {
			continue
		}
		users++
		if users > 1 && (users > turns || size > chars) {
			break
		}
		start = i
	}
	if start == head {
		return history
	}
	return append(history[:head:head], history[start:]...)
}
