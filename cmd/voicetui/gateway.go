package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// serveGateway runs the embedded gateway until interrupted, logging what
// it refuses and why to stderr.
func serveGateway(ctx context.Context, c config, stderr io.Writer) error {
	opts := c.provider.Local
	opts.Log = slog.New(slog.NewTextHandler(stderr, nil))
	backend.UpstreamCredentials(opts.Upstream, os.Getenv)
	srv, err := localgw.New(opts)
	if err != nil {
		return configError{err}
	}
	if err := srv.Start(c.addr); err != nil {
		return configError{err}
	}
	secret := "the one given with --secret"
	if opts.Secret == localgw.DefaultSecret {
		secret = localgw.DefaultSecret
	}
	fmt.Fprintf(stderr, "embedded gateway listening on %s (key %s, secret %s)\n", srv.URL(), opts.Key, secret)
	if u := opts.Upstream; u != nil {
		fmt.Fprintf(stderr, "in front of %s (%s): requests its rules let through pass on to it\n", provider.SafeURL(u.URL), u.Kind)
	}
	fmt.Fprintf(stderr, "control endpoint: %s/status, /quota?rule=RULE, /fault?rule=RULE, /reset (loopback only, header %s: %s)\n",
		srv.ControlURL(), localgw.ControlHeader, srv.ControlToken())
	fmt.Fprintf(stderr, "  e.g. curl -H '%s: %s' -X POST '%s/quota?rule=llm:credits'\n", localgw.ControlHeader, srv.ControlToken(), srv.ControlURL())
	fmt.Fprintf(stderr, "try: LIVEKIT_INFERENCE_URL=%s LIVEKIT_API_KEY=%s LIVEKIT_API_SECRET=... voicetui ask hello\n", srv.URL(), opts.Key)
	<-ctx.Done()
	shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return srv.Close(shutdown)
}
