package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/voicetui/voicetui/pipeline/conversation"
	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/qa"
	"github.com/voicetui/voicetui/ui"
)

// runQA runs the failure matrix and writes its report; it fails (exit 1)
// when a class does not behave as documented.
func runQA(ctx context.Context, c config, stdout, stderr io.Writer) error {
	var only []string
	for _, name := range strings.Split(c.qaOnly, ",") {
		if name = strings.TrimSpace(name); name != "" {
			only = append(only, name)
		}
	}
	classes, err := qa.Select(only)
	if err != nil {
		return usageError{"--only: " + err.Error()}
	}
	o := qa.Options{Out: c.qaOut, Only: only, Status: func(evs []conversation.Event) string { return ui.StatusText(evs, 76, true) }}
	gw := "embedded, one per class"
	if c.qaGateway != "" {
		if _, err := qa.ControlURL(c.qaGateway); err != nil {
			return usageError{err.Error()}
		}
		o.Gateway, o.ControlToken, o.AllowInsecureHT = c.qaGateway, c.provider.Local.ControlToken, c.provider.AllowInsecureHTTP
		if o.ControlToken == "" {
			o.ControlToken = os.Getenv("VOICETUI_CONTROL_TOKEN")
		}
		if o.ControlToken == "" {
			return usageError{"--gateway needs the gateway's control token: --control-token TOKEN or VOICETUI_CONTROL_TOKEN (printed when the gateway starts)"}
		}
		env := gateway.ConfigFromEnv(os.Getenv) // the names the LiveKit backend reads
		o.Key, o.Secret = env.APIKey, env.APISecret
		if o.Key == "" || o.Secret == "" {
			o.Key, o.Secret = localgw.DefaultKey, localgw.DefaultSecret // a `voicetui gateway` with its defaults
		}
		gw = c.qaGateway
	}
	tty := false
	if f, ok := stderr.(*os.File); ok {
		tty = term.IsTerminal(int(f.Fd()))
	}
	var mu sync.Mutex
	done := 0
	fmt.Fprintf(stderr, "voicetui qa: %d classes against %s; the report goes to %s\n", len(classes), gw, filepath.Join(c.qaOut, "index.md"))
	o.Progress = func(r qa.Result) {
		mu.Lock()
		defer mu.Unlock()
		done++
		v := "pass"
		if !r.Pass {
			v = "FAIL"
		}
		line := fmt.Sprintf("qa: %d/%d done: %s %s (%.1f s)", done, len(classes), r.Class.Name, v, r.Took.Seconds())
		if tty {
			fmt.Fprintf(stderr, "\r\033[K%s", line)
		} else {
			fmt.Fprintln(stderr, line)
		}
	}
	start := time.Now()
	results, err := qa.Run(ctx, o)
	if tty {
		fmt.Fprintln(stderr)
	}
	if err != nil && results == nil {
		return err
	}
	if werr := qa.WriteReport(c.qaOut, results, qa.Meta{Gateway: gw, Started: start, Took: time.Since(start)}); werr != nil {
		return werr
	}
	if err != nil {
		// Interrupted: not a pass (exit 0 would read as one in CI).
		return fmt.Errorf("qa interrupted (%v) after %d of %d classes: the partial report is %s", err, done, len(classes), filepath.Join(c.qaOut, "index.md"))
	}
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	index := filepath.Join(c.qaOut, "index.md")
	if failed > 0 {
		return fmt.Errorf("qa: %d of %d classes did not behave as documented: see %s", failed, len(results), index)
	}
	fmt.Fprintf(stdout, "qa: all %d classes behave as documented; report: %s\n", len(results), index)
	return nil
}
