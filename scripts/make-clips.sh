#!/bin/sh
# Regenerates the bundled fallback clips (assets/*.wav): espeak-ng speech,
# converted by sox to 16 kHz mono 16-bit, the pipeline's own format, so
# they play without resampling. Run from the repository root.
set -eu
say() {
	espeak-ng -v en-us -s 160 -w /tmp/voicetui-clip.wav "$2"
	sox /tmp/voicetui-clip.wav -r 16000 -c 1 -b 16 "assets/$1.wav" norm -3
	rm -f /tmp/voicetui-clip.wav
}
say quota "The assistant is out of credits: its quota is used up."
say unavailable "The assistant is unavailable. Please try again later."
