// Package assets holds the bundled fallback clips, embedded in the binary:
// real speech made once with espeak-ng and sox (scripts/make-clips.sh),
// 16 kHz mono 16-bit WAV, the pipeline's own format.
//
//   - quota.wav: "The assistant is out of credits: its quota is used up."
//   - unavailable.wav: "The assistant is unavailable. Please try again later."
package assets

import _ "embed"

//go:embed quota.wav
var QuotaWAV []byte

//go:embed unavailable.wav
var UnavailableWAV []byte
