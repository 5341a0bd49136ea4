#!/bin/sh
# Regenerates the bundled sounds (assets/*.wav), 16 kHz mono 16-bit, the
# pipeline's own format, so they play without resampling. Run from the
# repository root.
#
# Clips (a session ends): espeak-ng speech, converted by sox.
# Earcons (something failed, the session goes on): short tones made by sox,
# not speech, so they are never mistaken for the agent.
set -eu
# A clip opens with a short bright chime, loud from its first millisecond:
# speech starts softly (the "Th" of "The" reaches a clear level only after
# some 60 ms), and the signal should be heard the moment it plays.
say() {
	espeak-ng -v en-us -s 160 -w /tmp/voicetui-clip.wav "$2"
	sox /tmp/voicetui-clip.wav -r 16000 -c 1 -b 16 /tmp/voicetui-speech.wav silence 1 0.01 1%
	sox -n -r 16000 -c 1 -b 16 /tmp/voicetui-chime.wav synth 0.12 sine 880 fade h 0.002 0.12 0.05 vol 0.5 : synth 0.08 sine 0
	sox /tmp/voicetui-chime.wav /tmp/voicetui-speech.wav "assets/$1.wav" norm -3
	rm -f /tmp/voicetui-clip.wav /tmp/voicetui-speech.wav /tmp/voicetui-chime.wav
}
say quota "The assistant is out of credits: its quota is used up."
say unavailable "The assistant is unavailable. Please try again later."
say microphone "The microphone stopped working. Check it, then start again."

tone() { # name level effects...: synthesize to a temporary file, then one level for the whole sound
	name=$1 level=$2; shift 2
	sox -n -r 16000 -c 1 -b 16 /tmp/voicetui-earcon.wav "$@"
	sox /tmp/voicetui-earcon.wav "assets/$name.wav" lowpass 3000 norm "$level"
	rm -f /tmp/voicetui-earcon.wav
}
# "That didn't work, go on": a soft falling pair of tones, 0.35 s.
tone earcon_failed -10 synth 0.14 sine 660 fade h 0.01 0.14 0.04 : synth 0.03 sine 0 : synth 0.18 sine 440 fade h 0.01 0.18 0.08
# "A device": a low double beep, 0.32 s.
tone earcon_device -12 synth 0.12 square 220 fade h 0.005 0.12 0.03 : synth 0.08 sine 0 : synth 0.12 square 220 fade h 0.005 0.12 0.03
