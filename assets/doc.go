// Package assets holds the bundled sounds, embedded in the binary, made
// once by scripts/make-clips.sh as 16 kHz mono 16-bit WAV, the pipeline's
// own format.
//
// Clips, real speech (espeak-ng), for a session that ends on an error:
//   - quota.wav: "The assistant is out of credits: its quota is used up."
//   - unavailable.wav: "The assistant is unavailable. Please try again later."
//   - microphone.wav: "The microphone stopped working. Check it, then start again."
//
// Earcons, short tones (sox), not speech, for a failure the session goes
// on after:
//   - earcon_failed.wav: a falling pair of tones, 0.35 s: that turn failed.
//   - earcon_device.wav: a low double beep, 0.32 s: a device stopped.
package assets

import _ "embed"

//go:embed quota.wav
var QuotaWAV []byte

//go:embed unavailable.wav
var UnavailableWAV []byte

//go:embed microphone.wav
var MicrophoneWAV []byte

//go:embed earcon_failed.wav
var EarconFailedWAV []byte

//go:embed earcon_device.wav
var EarconDeviceWAV []byte
