// Package fallback will decide and play what the user hears and sees when
// something fails (bundled clips straight to the speaker, never through
// TTS). It is empty until the voice session issue lands; see README.md.
package fallback
