// Package pipeline will hold the voice session (turns, barge-in, error
// policy, events) and the provider interfaces, with the inference clients
// in sub-packages. It is empty until the typed-errors and session issues
// land; see README.md, "Status".
package pipeline
