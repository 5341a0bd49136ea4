#!/usr/bin/env bash
# Installs the system packages voicetui needs to build, run and test, when
# they are missing. Debian/Ubuntu (apt-get; sudo when not root) and macOS
# (Homebrew). Safe to run again: it installs nothing that is present.
set -euo pipefail

# Debian package -> why we need it.
debian_packages=(
  portaudio19-dev     # PortAudio capture (cgo)
  libasound2-dev      # ALSA: oto playback, quieting ALSA (cgo)
  pkg-config          # cgo finds the two above
  gcc                 # cgo
  pulseaudio          # headless test devices (a private server)
  pulseaudio-utils    # pacat/parec/pactl: feed and record them
  libasound2-plugins  # ALSA's pulse plugin: the bridge to that server
  sox                 # measuring and converting audio
  espeak-ng           # real synthetic speech (embedded gateway, test input)
  tmux                # the terminal the interface's smoke test drives
  iproute2            # room-mode tests: the network namespace they run in (ip)
  libopus-dev         # room mode: Opus for the LiveKit SDK's audio tracks (cgo)
  libopusfile-dev     # room mode: the SDK's Opus package links it (cgo)
  libsoxr-dev         # room mode: the SDK's resampler (cgo)
  libpocketsphinx3    # offline speech recognition, opened at run time (pipeline/localgw/sphinx)
  pocketsphinx-en-us  # its US English acoustic model, language model and dictionary
  flite               # a second synthetic voice: recognition tests and benchmarks
  libwebrtc-audio-processing-dev  # echo cancellation on the microphone (audio/echo, cgo)
  g++                 # cgo: the C++ shim over WebRTC's audio processing
)
# Homebrew's webrtc-audio-processing is 1.x, whose API differs from the
# 0.3 Debian and Ubuntu ship: on macOS voicetui builds without echo
# cancellation (--aec says so; use headphones or --half-duplex).
# Homebrew's cmu-pocketsphinx is pocketsphinx 5, whose API differs from
# Debian's 5prealpha: on macOS the recognizer reports itself unavailable
# and the embedded gateway keeps its energy detector.
brew_packages=(portaudio pkg-config pulseaudio sox espeak-ng tmux opus opusfile libsoxr cmu-pocketsphinx flite)

# Go comes from go.dev or the machine's image, not the package manager
# (Debian 12 ships 1.19); say so plainly when it is missing or too old.
if ! command -v go >/dev/null; then
  echo "setup: Go 1.26 or newer is required and 'go' is not on PATH (https://go.dev/dl/)" >&2
  exit 1
fi

# With --test: Node.js runs the reference LiveKit agent (agents-js) in the
# tests; it needs 20 or newer, and Debian 12's own nodejs is 18: say so,
# as for Go. voicetui itself does not need it.
if [ "${1:-}" = "--test" ] && ! node --version 2>/dev/null | grep -Eq '^v(2[0-9]|[3-9][0-9])\.'; then
  echo "setup: Node.js 20 or newer (with npm) is required for the tests against agents-js (https://nodejs.org)" >&2
  exit 1
fi

case "$(uname -s)" in
Linux)
  if ! command -v dpkg-query >/dev/null; then
    echo "setup: not a Debian/Ubuntu system; install the equivalents of: ${debian_packages[*]}" >&2
    exit 1
  fi
  missing=()
  for p in "${debian_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && exit 0
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  # Refresh the lists first: on a fresh machine they may be empty.
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  ;;
Darwin)
  command -v brew >/dev/null || { echo "setup: install Homebrew first (https://brew.sh)" >&2; exit 1; }
  for p in "${brew_packages[@]}"; do
    brew list --versions "$p" >/dev/null 2>&1 || brew install "$p"
  done
  ;;
*)
  echo "setup: unsupported system $(uname -s)" >&2
  exit 1
  ;;
esac
