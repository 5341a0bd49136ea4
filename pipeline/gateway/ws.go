package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// readLimit bounds one WebSocket message from the gateway (a TTS audio
// frame is base64 of a few hundred milliseconds of PCM).
const readLimit = 4 << 20

// errIdle is the cancel cause of a wait the gateway did not answer in time.
var errIdle = errors.New("idle timeout")

// refusalCatcher keeps the body of a refused handshake. The WebSocket
// library hands back only its first kilobyte, too little for a quota body
// with a long hint; this reads up to provider.MaxBody and types it.
type refusalCatcher struct {
	base  http.RoundTripper
	stage provider.Stage
	mu    sync.Mutex
	err   error
}

func (rc *refusalCatcher) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rc.base.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	typed := provider.ReadResponse(rc.stage, resp) // reads (bounded) and closes
	rc.mu.Lock()
	rc.err = typed
	rc.mu.Unlock()
	resp.Body = http.NoBody
	return resp, nil
}

func (rc *refusalCatcher) refused() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}

// dial opens one WebSocket with a fresh token, within the attempt timeout.
// A refused handshake becomes the typed error of its response.
func (c Config) dial(ctx context.Context, stage provider.Stage, path, model string) (*websocket.Conn, error) {
	h := http.Header{}
	if err := c.authorize(h); err != nil {
		return nil, err
	}
	base := c.client().Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rc := &refusalCatcher{base: base, stage: stage}
	client := *c.client()
	client.Transport = rc
	dctx, cancel := context.WithTimeoutCause(ctx, c.Retry.AttemptTimeout(), errIdle)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, c.wsURL(path, model), &websocket.DialOptions{HTTPClient: &client, HTTPHeader: h})
	if err != nil {
		if typed := rc.refused(); typed != nil {
			return nil, typed
		}
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if context.Cause(dctx) == errIdle {
			return nil, &provider.TimeoutError{Stage: stage, After: c.Retry.AttemptTimeout()}
		}
		return nil, &provider.ConnectionError{Stage: stage, Op: "connect", Err: err}
	}
	conn.SetReadLimit(readLimit)
	return conn, nil
}

// readError types a failed read or write on an open socket.
// ctx is the one the operation ran under; idle is its timeout.
func readError(ctx context.Context, stage provider.Stage, op string, err error, idle time.Duration) error {
	if cause := context.Cause(ctx); cause == errIdle {
		return &provider.TimeoutError{Stage: stage, After: idle}
	} else if cause != nil {
		return cause
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		err = errors.New("connection closed unexpectedly: " + ce.Error())
	}
	return &provider.ConnectionError{Stage: stage, Op: op, Err: err}
}
