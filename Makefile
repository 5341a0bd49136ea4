# voicetui: `make run` runs it, `make test` tests it; both install what is
# missing first (scripts/setup.sh).

GO      ?= go
BIN     := bin/voicetui
# gordonklaus/portaudio passes a stream id as a C pointer, which the race
# detector's pointer checks reject; switch those checks off for that
# package only (our own code keeps them).
RACE    := -race -gcflags=github.com/gordonklaus/portaudio=-d=checkptr=0
# Fuzz budgets are execution counts, not durations: with a duration, Go
# 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" at the deadline when the machine is busy (golang/go#75804,
# fixed in Go 1.27); a count has no deadline to race.
FUZZTIME ?= 100000x
# Echo cancellation's build tags (audio/echo): aec1 where
# webrtc-audio-processing 1.x is installed, none for 0.3, noaec where
# neither is (scripts/aec-tags.sh says so on stderr), so a machine without
# the library still builds and tests. Every go build, test and vet below
# takes them. Worked out once, at first use: after setup has installed
# what it could, and never for targets that build nothing (clean).
GOTAGS = $(eval GOTAGS := $$(shell scripts/aec-tags.sh))$(GOTAGS)

.PHONY: all setup setup-test build dist run check devices test vet fmt-check fuzz fuzz-long bench clean

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

build: setup
	$(GO) build -tags "$(GOTAGS)" -o $(BIN) ./cmd/voicetui

# A release build: paths trimmed, symbols stripped, the version stamped
# from git (voicetui --version), named for this OS and architecture.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
DIST    := dist/voicetui-$(VERSION)-$(shell $(GO) env GOOS)-$(shell $(GO) env GOARCH)
dist: setup
	$(GO) build -tags "$(GOTAGS)" -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o $(DIST) ./cmd/voicetui
	@$(DIST) --version

# A spoken conversation on the default devices, with the embedded gateway
# unless credentials are set (docs/commands.md: --backend). `make check` tests devices.
run: build
	$(BIN) $(ARGS)

check: build
	$(BIN) check $(ARGS)

devices: build
	$(BIN) devices

vet:
	$(GO) vet -tags "$(GOTAGS)" ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# The real-time tests (devices, rooms, the binary) serialize themselves
# across packages (a machine-wide lock, audio/pulsetest), so plain
# `go test ./...` needs no flag. Here -p 1 still runs one package at a
# time: under -race every package is several times heavier, and beside a
# real-time one on two cores that starves the sound server. The random
# interface sessions run in full (2000) without -race too: under it, 200.
test: setup-test fmt-check vet
	$(MAKE) --no-print-directory fuzz FUZZTIME=20000x GOTAGS="$(GOTAGS)"
	$(GO) test -tags "$(GOTAGS)" -count=1 -run '^TestRandomSessions$$' ./ui
	$(GO) test -tags "$(GOTAGS)" $(RACE) -p 1 -timeout 30m -count=1 ./...

# Short runs of every fuzz target (go test -fuzz takes one target at a time).
fuzz:
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -fuzz '^FuzzWAVHeader$$' -fuzztime $(FUZZTIME) ./audio
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -fuzz '^FuzzFromResponse$$' -fuzztime $(FUZZTIME) ./pipeline/provider
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -fuzz '^FuzzChatStream$$' -fuzztime $(FUZZTIME) ./pipeline/openai
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -fuzz '^FuzzDecodeSTT$$' -fuzztime $(FUZZTIME) ./pipeline/gateway
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -fuzz '^FuzzDecodeTTS$$' -fuzztime $(FUZZTIME) ./pipeline/gateway

fuzz-long:
	$(MAKE) --no-print-directory fuzz FUZZTIME=5000000x GOTAGS="$(GOTAGS)"

bench: setup
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench Latency -benchtime 20x -count=1 ./audio/device ./audio/playback
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench UnderrunsUnderLoad -benchtime 1x -count=1 ./audio/playback
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench Cancel -count=1 ./audio/echo
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench Rig -benchtime 5x -count=1 ./audio/echo
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench . -count=1 ./audio ./pipeline/provider ./pipeline/gateway ./pipeline/openai ./pipeline/localgw ./ui
	$(GO) test -tags "$(GOTAGS)" -run '^$$' -bench . -benchtime 1x -count=1 ./pipeline/session ./cmd/voicetui ./pipeline/localgw/sphinx ./pipeline/room ./pipeline/console

clean:
	rm -rf bin dist
