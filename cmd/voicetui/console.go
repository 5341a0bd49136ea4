package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/console"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/provider"
	"github.com/voicetui/voicetui/ui"
)

// talkToConsoleAgent runs the developer's agent in its console mode with
// voicetui as its microphone and speaker (lk agent console's role): the
// same devices, files, events and interface as talk, a console.Conversation
// instead of the local pipeline, and by default the agent's inference on
// an embedded gateway here, so its quota refusals are seen with their body.
func talkToConsoleAgent(ctx context.Context, c config, stdout, stderr io.Writer) error {
	argv := console.Command(c.agentArgs)
	if err := console.Check(argv, ""); err != nil { // before any device opens
		return usageError{err.Error()}
	}
	var open closers
	defer open.closeAll()

	logPath, logW, err := agentLog(c, &open)
	if err != nil {
		return err
	}
	out, err := openEvents(c, stdout, &open)
	if err != nil {
		return err
	}
	out.log = slog.NewTextHandler(logW, nil)

	co := console.Options{Command: argv, Env: os.Environ(), Log: logW, LogName: logPath,
		Fallback: c.session.Fallback, MaxUnrecoverable: c.session.MaxUnrecoverable,
		ConnectWait: c.connectWait, AnswerWait: c.room.AnswerWait}
	var gw *localgw.Server
	where := "its own inference (--inference direct)"
	if c.inference != "direct" {
		refusals := make(chan localgw.Refused, 32)
		opts := c.provider.Local
		opts.Log = slog.New(slog.NewTextHandler(logW, nil)).With("component", "gateway")
		opts.OnRefused = func(rf localgw.Refused) {
			select {
			case refusals <- rf:
			default: // the loop is far behind: the first ones are what matter
			}
		}
		backend.UpstreamCredentials(opts.Upstream, os.Getenv)
		if gw, err = localgw.New(opts); err != nil {
			return configError{err}
		}
		if err := gw.Start("127.0.0.1:0"); err != nil {
			return configError{fmt.Errorf("the agent's gateway: %w", err)}
		}
		open.add(func() error {
			shutdown, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			return gw.Close(shutdown)
		})
		key, secret := cmp.Or(opts.Key, localgw.DefaultKey), cmp.Or(opts.Secret, localgw.DefaultSecret) // what the gateway checks
		co.Env = agentGatewayEnv(os.Environ(), gw.URL(), key, secret)
		co.Refusals = refusals
		where = "the embedded gateway"
		if u := opts.Upstream; u != nil {
			where = "the embedded gateway in front of " + provider.SafeURL(u.URL)
		}
	}
	aio, err := openAudio(c, &open, out.recordFailed, out.echoFailed)
	if err != nil {
		return err
	}
	co.Mic, co.Speaker, co.Events = aio.mic, aio.spk, out.events
	co.HoldInput = c.input != ""
	var lv *levels
	if c.tui {
		lv = newLevels()
		co.InputLevel, co.OutputLevel = lv.input, lv.output
	}
	conv, err := console.New(co)
	if err != nil {
		return usageError{err.Error()}
	}
	what := strings.Join(argv, " ")
	if !c.tui {
		fmt.Fprintf(stderr, "voicetui: running %s in console mode, inference through %s; its log: %s\n", what, where, logPath)
		return conv.Run(ctx)
	}
	ctl := ui.Controller{}
	if gw != nil {
		gatewayControl(&ctl, gw) // x, r, 0 change what the agent's inference meets
	}
	return runInterface(ctx, conv, ui.Info{Backend: "console agent", TextMode: aio.noMic != nil, Echo: aio.echo,
		Detail: fmt.Sprintf("%s · inference: %s · log: %s", what, where, logPath)}, ctl, stdout, out, lv, c.record, aio.notes()...)
}

// agentLog is where the agent's output (and its gateway's log) goes:
// --log-file, else agent.log in --record's directory, else a temporary
// file; never the terminal, which the interface owns.
func agentLog(c config, open *closers) (string, io.Writer, error) {
	path := c.logFile
	if path == "" && c.record != "" {
		if err := os.MkdirAll(c.record, 0o700); err != nil {
			return "", nil, configError{fmt.Errorf("--record: %w", err)}
		}
		path = filepath.Join(c.record, "agent.log")
	}
	var f *os.File
	var err error
	if path == "" {
		f, err = os.CreateTemp("", "voicetui-agent-*.log") // 0600
		if err == nil {
			path = f.Name()
		}
	} else {
		f, err = createPrivate(path, os.O_APPEND)
	}
	if err != nil {
		return "", nil, configError{fmt.Errorf("the agent's log: %w", err)}
	}
	open.add(f.Close)
	return path, f, nil
}

// agentGatewayEnv is env with the agent's inference pointed at a gateway here:
// its URL and the key and secret its tokens are signed with, under both
// names agents-js reads. Nothing else changes.
func agentGatewayEnv(env []string, url, key, secret string) []string {
	set := map[string]string{
		"LIVEKIT_INFERENCE_URL": url, "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret,
		"LIVEKIT_INFERENCE_API_KEY": key, "LIVEKIT_INFERENCE_API_SECRET": secret,
	}
	var out []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); !has(set, k) {
			out = append(out, kv)
		}
	}
	for k, v := range set {
		out = append(out, k+"="+v)
	}
	return out
}

func has(m map[string]string, k string) bool { _, ok := m[k]; return ok }
