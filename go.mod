module github.com/voicetui/voicetui

go 1.26.0

require (
	github.com/ebitengine/oto/v3 v3.4.0
	github.com/gordonklaus/portaudio v0.0.0-20250206071425-98a94950218b
	go.uber.org/goleak v1.3.0
	golang.org/x/term v0.48.0
	gonum.org/v1/gonum v0.17.0
)

require (
	github.com/ebitengine/purego v0.9.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
