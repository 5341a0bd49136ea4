#!/bin/sh
# Prints the go build tags for echo cancellation (audio/echo) on this
# machine, for the Makefile's -tags: "aec1" where webrtc-audio-processing
# 1.x is installed (Debian 13, current Ubuntu, Homebrew), nothing where 0.3
# is (Debian 12, Ubuntu 22.04: the default build), else "noaec", with a
# line on stderr. Never fails: a build without the library still works.
if command -v pkg-config >/dev/null 2>&1; then
  if pkg-config --exists webrtc-audio-processing-1 2>/dev/null; then
    echo aec1
    exit 0
  fi
  # 0.3 is Linux's default build; elsewhere it has no shim.
  if [ "$(uname -s)" = Linux ] && pkg-config --exists webrtc-audio-processing 2>/dev/null; then
    exit 0
  fi
fi
echo "echo cancellation: webrtc-audio-processing not found, building without it (the voice threshold is raised while the agent speaks; headphones keep the echo out)" >&2
echo noaec
exit 0
