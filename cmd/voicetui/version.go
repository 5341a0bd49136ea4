package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/voicetui/voicetui/audio/echo"
)

// version is stamped by `make dist` (-ldflags -X main.version=...); a
// plain build says "dev" and the commit the go command recorded.
var version = "dev"

// versionString is the version, with the commit for a plain build.
func versionString() string {
	v := version
	if info, ok := debug.ReadBuildInfo(); ok && v == "dev" {
		var rev, dirty string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			v += " (" + rev + dirty + ")"
		}
	}
	return v
}

// printVersion says what this binary is: its version, the Go it was
// built with, and whether it has echo cancellation (with which library).
func printVersion(w io.Writer) {
	aec := "echo cancellation built in (" + echo.Library + ")"
	if !echo.Available {
		aec = "no echo cancellation in this build (built without webrtc-audio-processing)"
	}
	fmt.Fprintf(w, "voicetui %s, %s, %s/%s; %s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH, aec)
}
