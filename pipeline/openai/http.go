package openai

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/voicetui/voicetui/pipeline/provider"
)

// errIdle is the cancel cause of an attempt whose server stopped talking.
var errIdle = errors.New("idle timeout")

// body is a response body whose reads are typed and time out when the
// server sends nothing for timeout. The timer runs only inside Read, so a
// slow consumer is never mistaken for a stalled server.
type body struct {
	stage   provider.Stage
	parent  context.Context // the caller's
	ctx     context.Context // this attempt's
	cancel  context.CancelCauseFunc
	timer   *time.Timer
	timeout time.Duration
	rc      io.ReadCloser
	limit   int64 // bytes a response may have; 0: no limit
	read    int64
	once    sync.Once
}

// send makes one attempt at req (built under the attempt's context) and
// returns the body of a 2xx response. Anything else is a typed error: the
// status with its whole (bounded) body, a timeout, a connection error, or
// the caller's own cancellation.
func send(ctx context.Context, stage provider.Stage, client *http.Client, timeout time.Duration,
	build func(ctx context.Context) (*http.Request, error)) (*http.Response, *body, error) {
	b := newBody(ctx, stage, timeout)
	req, err := build(b.ctx)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		err = b.typed("request", err)
		b.Close()
		return nil, nil, err
	}
	b.rc = resp.Body
	if resp.StatusCode/100 != 2 {
		// Read through b: an error body that stalls times out too.
		failed := *resp
		failed.Body = b
		err := provider.ReadResponse(stage, &failed)
		b.Close()
		return nil, nil, err
	}
	b.timer.Stop()
	return resp, b, nil
}

// newBody starts an attempt under ctx; its timer is already running.
func newBody(ctx context.Context, stage provider.Stage, timeout time.Duration) *body {
	actx, cancel := context.WithCancelCause(ctx)
	b := &body{stage: stage, parent: ctx, ctx: actx, cancel: cancel, timeout: timeout}
	b.timer = time.AfterFunc(timeout, func() { cancel(errIdle) })
	return b
}

func (b *body) Read(p []byte) (int, error) {
	if b.limit > 0 {
		if b.read >= b.limit {
			return 0, &provider.ProtocolError{Stage: b.stage, Detail: fmt.Sprintf("response larger than %d MiB", b.limit>>20)}
		}
		p = p[:min(int64(len(p)), b.limit-b.read)]
	}
	b.timer.Reset(b.timeout)
	n, err := b.rc.Read(p)
	b.timer.Stop()
	b.read += int64(n)
	if err != nil && err != io.EOF {
		err = b.typed("read", err)
	}
	return n, err
}

func (b *body) Close() error {
	b.once.Do(func() {
		b.timer.Stop()
		b.cancel(context.Canceled)
		if b.rc != nil {
			b.rc.Close()
		}
	})
	return nil
}

// typed turns a transport failure into the caller's cancellation, a
// TimeoutError or a ConnectionError.
func (b *body) typed(op string, err error) error {
	if b.parent.Err() != nil {
		return context.Cause(b.parent)
	}
	if context.Cause(b.ctx) == errIdle {
		return &provider.TimeoutError{Stage: b.stage, After: b.timeout}
	}
	var c provider.Classified
	if errors.As(err, &c) {
		return err
	}
	return &provider.ConnectionError{Stage: b.stage, Op: op, Err: err}
}
