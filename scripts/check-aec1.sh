#!/usr/bin/env bash
# Checks the echo canceller's 1.x shim (audio/echo/webrtc1.cc, -tags aec1)
# against Debian 13's webrtc-audio-processing 1.x on a Debian 12 machine,
# which has only 0.3. Not part of make test. Nothing is installed: the
# packages are downloaded and unpacked into a temporary directory.
#
#   scripts/check-aec1.sh          compile the shim, link and run a C smoke
#                                  test, go vet/build -tags aec1, --version
#   scripts/check-aec1.sh --test   and go test -tags aec1 ./audio/echo (the
#                                  rig: a few minutes, the real-time lock)
#
# 1.x's library needs Debian 13's glibc (2.38 or newer) and libstdc++, so
# what runs here runs under Debian 13's dynamic loader and libraries,
# unpacked beside it; the rest (PortAudio, ALSA, PulseAudio) is Debian
# 12's. Linking against them needs --allow-shlib-undefined (the symbols
# Debian 12's glibc lacks resolve at run time, under the newer loader).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
suite=${AEC1_SUITE:-trixie}
packages=(libwebrtc-audio-processing-dev libwebrtc-audio-processing-1-3 libabsl-dev libabsl20240722 libc6 libstdc++6 libgcc-s1)

say() { echo "check-aec1: $*"; }

# The Debian mirror this machine's apt uses (deb822 or one-line sources).
mirror=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
  grep -v security | grep -oE 'https?://[^ ]+/debian/?' | head -1 || true)
[ -n "$mirror" ] || { say "no Debian mirror found in /etc/apt/sources*"; exit 1; }

tmp=$(mktemp -d /tmp/check-aec1.XXXXXX)
say "working in $tmp (left there; remove it when done)"
mkdir -p "$tmp/apt/lists/partial" "$tmp/apt/cache/archives/partial" "$tmp/debs" "$tmp/root" "$tmp/pc"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$tmp/apt/sources.list"
apt=(-o "Dir::Etc::sourcelist=$tmp/apt/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$tmp/apt/lists"
  -o "Dir::Cache=$tmp/apt/cache" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)

say "downloading from $suite: ${packages[*]}"
apt-get "${apt[@]}" -qq update
(cd "$tmp/debs" && apt-get "${apt[@]}" -qq download "${packages[@]}")
for d in "$tmp"/debs/*.deb; do
  say "  $(basename "$d")"
  dpkg-deb -x "$d" "$tmp/root"
done

lib=$tmp/root/usr/lib/x86_64-linux-gnu
# The .pc files say /usr: point them into the unpacked tree.
for f in "$lib"/pkgconfig/*.pc; do
  sed "s|=/usr\b|=$tmp/root/usr|" "$f" >"$tmp/pc/$(basename "$f")"
done
export PKG_CONFIG_PATH=$tmp/pc
say "pkg-config webrtc-audio-processing-1: version $(pkg-config --modversion webrtc-audio-processing-1)"
cat >"$tmp/run" <<EOF
#!/bin/sh
# Runs a program under $suite's loader and libraries.
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "\$@"
EOF
chmod +x "$tmp/run"
link=(-Wl,-rpath-link="$lib" -Wl,--allow-shlib-undefined)

say "compiling audio/echo/webrtc1.cc (g++ -std=c++17 -Wall -Wextra)"
g++ -std=c++17 -Wall -Wextra -Wno-unused-parameter -c $(pkg-config --cflags webrtc-audio-processing-1) \
  -I"$repo/audio/echo" "$repo/audio/echo/webrtc1.cc" -o "$tmp/webrtc1.o"

say "a C smoke test through webrtc.h: 4 s of tones and noise, their echo 30 ms later, 10 dB down"
cat >"$tmp/smoke.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "webrtc.h"

enum { RATE = 16000, N = 160, TOTAL = 4 * RATE };

int main(void) {
  void *h = voicetui_aec_new(RATE);
  if (!h) { printf("voicetui_aec_new failed\n"); return 1; }
  static int16_t far[TOTAL], mic[TOTAL], out[TOTAL];
  unsigned s = 1;
  for (int i = 0; i < TOTAL; i++) {
    double t = (double)i / RATE, v;
    s = s * 1103515245u + 12345u;
    v = 0.3 * sin(2 * M_PI * (300 + 200 * sin(2 * M_PI * 0.7 * t)) * t) + 0.15 * sin(2 * M_PI * 1250 * t) +
        0.1 * (((int)((s >> 16) & 0x7fff) - 16384) / 16384.0);
    far[i] = (int16_t)(v * 26000);
  }
  int d1 = RATE * 30 / 1000, d2 = RATE * 41 / 1000;  // the echo and a reflection
  for (int i = 0; i < TOTAL; i++)
    mic[i] = (int16_t)((i >= d1 ? 0.316 * far[i - d1] : 0) + (i >= d2 ? 0.1 * far[i - d2] : 0));
  // audio/echo hands the reference aligned 10 ms ahead of its echo.
  int lead = d1 - RATE / 100, errs = 0;
  int16_t ref[N];
  for (int f = 0; f + N <= TOTAL; f += N) {
    for (int i = 0; i < N; i++) ref[i] = f + i >= lead ? far[f + i - lead] : 0;
    if (voicetui_aec_process(h, mic + f, ref, out + f, N, 10) != 0) errs++;
  }
  int wrong = voicetui_aec_process(h, mic, ref, out, 100, 10);
  voicetui_aec_free(h);
  double last = 0;
  for (int b = 0; b < TOTAL; b += RATE / 2) {
    double ei = 0, eo = 0;
    for (int i = b; i < b + RATE / 2; i++) { ei += (double)mic[i] * mic[i]; eo += (double)out[i] * out[i]; }
    last = 10 * log10((ei + 1) / (eo + 1));
    printf("  %.1f-%.1f s: %.1f dB of echo taken out\n", (double)b / RATE, (double)b / RATE + 0.5, last);
  }
  printf("  frames failed: %d; a 100-sample frame: code %d (want -1)\n", errs, wrong);
  if (errs || wrong != -1 || last < 20) { printf("  FAIL (want 20 dB or more at the end)\n"); return 1; }
  printf("  PASS\n");
  return 0;
}
EOF
gcc -I"$repo/audio/echo" -c "$tmp/smoke.c" -o "$tmp/smoke.o"
g++ "$tmp/smoke.o" "$tmp/webrtc1.o" $(pkg-config --libs webrtc-audio-processing-1) -lm "${link[@]}" -o "$tmp/smoke"
"$tmp/run" "$tmp/smoke"

export CGO_LDFLAGS="${link[*]}"
say "scripts/aec-tags.sh with the unpacked 1.x: '$(scripts/aec-tags.sh)'"
say "go vet -tags aec1 ./audio/echo"
go vet -tags aec1 ./audio/echo
status=0
if [ "${1:-}" = "--test" ]; then
  say "go test -tags aec1 ./audio/echo (run under $suite's loader)"
  go test -tags aec1 -exec "$tmp/run" -count=1 -v ./audio/echo >"$tmp/test.log" 2>&1 || status=$?
  grep -E '^(---|ok|FAIL)|_test.go:' "$tmp/test.log" || true
  say "go test: exit $status (the whole log: $tmp/test.log)"
fi
say "go vet -tags aec1 ./cmd/voicetui, go build -tags aec1 ./cmd/voicetui"
go vet -tags aec1 ./cmd/voicetui
go build -tags aec1 -o "$tmp/voicetui" ./cmd/voicetui
say "voicetui --version: $("$tmp/run" "$tmp/voicetui" --version)"
say "done; not checked here: the interface with real devices on a 1.x system, macOS/Homebrew"
exit $status
