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
  g++                 # cgo: the C++ shim over WebRTC's audio processing
)
# Echo cancellation on the microphone (audio/echo, cgo), installed on its
# own: voicetui builds without it (scripts/aec-tags.sh), so a system that
# lacks the package only gets a warning. The package is 0.3 in Debian 12
# and Ubuntu 22.04, 1.x in Debian 13 and current Ubuntu; either builds.
debian_optional=(libwebrtc-audio-processing-dev)
# Homebrew's webrtc-audio-processing is 1.x, built through the aec1 shim
# (scripts/aec-tags.sh finds it), installed the same optional way. (Should
# Homebrew move to 2.x, webrtc-audio-processing-2, which has no shim here:
# aec-tags.sh then builds without echo cancellation and says so.)
brew_optional=(webrtc-audio-processing)
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
    echo "setup: not a Debian/Ubuntu system; install the equivalents of: ${debian_packages[*]} (and for echo cancellation ${debian_optional[*]})" >&2
    exit 1
  fi
  missing=() optional=()
  for p in "${debian_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  for p in "${debian_optional[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      optional+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ] && exit 0
  # Nothing else missing and the optional package unknown to the package
  # lists (a system without it): not tried at every make (scripts/aec-tags.sh
  # says at build time that echo cancellation is left out).
  if [ ${#missing[@]} -eq 0 ] && ! apt-cache show "${optional[@]}" >/dev/null 2>&1; then
    exit 0
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      if [ ${#missing[@]} -eq 0 ]; then
        echo "setup: need root or sudo to install ${optional[*]}: voicetui builds without echo cancellation" >&2
        exit 0
      fi
      echo "setup: need root or sudo to install: ${missing[*]} ${optional[*]}" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  # Refresh the lists first: on a fresh machine they may be empty.
  $sudo apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    echo "setup: installing ${optional[*]}"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${optional[@]}" ||
      echo "setup: could not install ${optional[*]}: voicetui builds without echo cancellation" >&2
  fi
  ;;
Darwin)
  command -v brew >/dev/null || { echo "setup: install Homebrew first (https://brew.sh)" >&2; exit 1; }
  for p in "${brew_packages[@]}"; do
    brew list --versions "$p" >/dev/null 2>&1 || brew install "$p"
  done
  for p in "${brew_optional[@]}"; do
    brew list --versions "$p" >/dev/null 2>&1 || brew install "$p" ||
      echo "setup: could not install $p: voicetui builds without echo cancellation" >&2
  done
  ;;
*)
  echo "setup: unsupported system $(uname -s)" >&2
  exit 1
  ;;
esac
