package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/backend"
	"github.com/voicetui/voicetui/pipeline/console"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/room"
	"github.com/voicetui/voicetui/pipeline/session"
)

// config is everything the flags say.
type config struct {
	command      string
	listDevices  bool
	version      bool
	inputDevice  string
	outputDevice string
	seconds      float64
	prompt       string // ask: the question
	backend      string
	provider     backend.Options
	sttScript    string // file; its lines go to provider.Local.STTScript
	addr         string // gateway: where to listen
	upstream     string // gateway: a real gateway behind the embedded one
	upstreamKind string
	headless     bool
	tui          bool // the terminal interface (talk on a terminal, not headless)
	logFile      string
	input        string // WAV replacing the microphone
	output       string // WAV replacing the speaker
	record       string // directory
	errorAudio   string // WAV replacing the fallback clips
	aec          bool   // --aec on: cancel the speaker's echo in the microphone
	halfDuplex   bool   // --half-duplex: raise the voice threshold while the agent speaks, even with AEC
	session      session.Options
	room         room.Options  // voicetui room: URL, token, room, identity, agent name, thresholds
	qaOut        string        // qa: the report's directory
	qaOnly       string        // qa: classes, comma-separated
	qaGateway    string        // qa: a gateway with a control endpoint instead of embedded ones
	agentArgs    []string      // console: the agent's command line
	inference    string        // console: embedded (default) or direct
	connectWait  time.Duration // console: for the agent to connect
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (see voicetui --help)" }

const usage = `voicetui: a terminal voice-agent client.

Usage:
  voicetui [flags]               talk with the agent (microphone and speaker,
                                 or --input/--output WAV files)
  voicetui devices               list input and output devices
  voicetui check [flags]         record from the microphone with a level
                                 meter, then play the recording back
  voicetui --list-devices        same as 'voicetui devices'
  voicetui ask [flags] TEXT      send TEXT to the configured LLM and print
                                 the streamed reply (checks credentials,
                                 models and quota without audio)
  voicetui gateway [flags]       run the embedded gateway standalone, for
                                 other clients and quota QA
  voicetui room [flags]          talk to a LiveKit agent in a room
                                 (LIVEKIT_URL, LIVEKIT_API_KEY/SECRET)
  voicetui console [flags] [--] AGENT_COMMAND...
                                 run your agent in its console mode with
                                 voicetui as its microphone and speaker,
                                 e.g. voicetui console -- node agent.mjs
  voicetui qa [flags]            run every failure class against the
                                 embedded gateway (or --gateway URL) and
                                 write a report (--out DIR); exit 0 when
                                 all behave as documented
  voicetui demo [flags]          a guided walk through quota failures on
                                 the speaker: a key between steps, q quits

Backend (credentials come from the environment only; with none, the
embedded gateway runs in-process):
  LiveKit Inference    LIVEKIT_API_KEY, LIVEKIT_API_SECRET (or the
                       LIVEKIT_INFERENCE_API_* names), LIVEKIT_INFERENCE_URL
  OpenAI-compatible    OPENAI_API_KEY, OPENAI_BASE_URL

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("voicetui", flag.ContinueOnError)
	// Parse errors become one line (exitCode prints it); the usage text
	// is for --help only.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	help := func() {
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.listDevices, "list-devices", false, "list audio devices and exit")
	fs.BoolVar(&c.version, "version", false, "print the version (and whether this build has echo cancellation) and exit")
	fs.StringVar(&c.inputDevice, "input-device", "", "microphone: an index or a name substring from 'voicetui devices' (default: the system default)")
	fs.StringVar(&c.outputDevice, "output-device", "", "speaker: an index or a name substring from 'voicetui devices' (default: the system default)")
	fs.Float64Var(&c.seconds, "seconds", 3, "check: how long to record")
	p := &c.provider
	fs.StringVar(&c.backend, "backend", "auto", "inference backend: auto, embedded, livekit or openai (auto: LiveKit when its credentials are set, else OpenAI-compatible when configured, else the embedded gateway)")
	fs.StringVar(&p.GatewayURL, "gateway-url", "", "LiveKit Inference base URL (default: $LIVEKIT_INFERENCE_URL, else the production gateway)")
	fs.StringVar(&p.OpenAIURL, "openai-url", "", "OpenAI-compatible base URL, e.g. http://localhost:11434/v1 (default: $OPENAI_BASE_URL, else OpenAI)")
	fs.StringVar(&p.LLMModel, "llm-model", "", "LLM model (default: openai/gpt-4.1-mini on LiveKit, gpt-4.1-mini on OpenAI)")
	fs.StringVar(&p.STTModel, "stt-model", "", "speech-to-text model (default: deepgram/nova-3 on LiveKit, whisper-1 on OpenAI)")
	fs.StringVar(&p.TTSModel, "tts-model", "", "text-to-speech model (default: cartesia/sonic-2 on LiveKit, gpt-4o-mini-tts on OpenAI)")
	fs.StringVar(&p.Voice, "voice", "", "TTS voice (default: the backend's)")
	fs.StringVar(&p.Language, "language", "", "language code for STT and TTS (default: en on LiveKit, auto-detect on OpenAI)")
	fs.StringVar(&p.Priority, "priority", "", "LiveKit Inference request priority: priority, standard or low")
	fs.BoolVar(&p.AllowInsecureHTTP, "allow-insecure-http", false, "send credentials over plain http:// to a host other than this machine (refused by default: anyone on the network could read them)")
	local := &p.Local
	fs.Func("quota", "embedded gateway: a quota rule STAGE:KIND[:after=N][:count=K] (repeatable), e.g. llm:credits, tts:credits:after=3, llm:rate:count=2", func(v string) error {
		r, err := localgw.ParseQuota(v)
		local.Quotas = append(local.Quotas, r)
		return err
	})
	fs.Func("fault", "embedded gateway: a fault rule STAGE:KIND[:after=N][:count=K] (repeatable), KIND delay=DURATION, 5xx, disconnect, stall, keepalive or malformed", func(v string) error {
		r, err := localgw.ParseFault(v)
		local.Faults = append(local.Faults, r)
		return err
	})
	fs.StringVar(&c.sttScript, "stt-script", "", "embedded gateway: a file of transcripts, one per utterance, in order")
	fs.Func("stt-engine", "embedded gateway: how its STT finds words without a script: auto (pocketsphinx when installed), pocketsphinx or energy (default auto)", func(v string) error {
		local.STTEngine = localgw.STTEngine(v)
		return nil
	})
	fs.DurationVar(&local.TokenDelay, "llm-token-delay", 30*time.Millisecond, "embedded gateway: pause between streamed words of the demo agent")
	fs.StringVar(&c.addr, "addr", localgw.DefaultAddr, "gateway: address to listen on")
	fs.StringVar(&c.upstream, "upstream", "", "embedded gateway: pass requests its rules let through to this real gateway (base URL ending in /v1; credentials from LIVEKIT_[INFERENCE_]API_KEY/SECRET, or OPENAI_API_KEY)")
	fs.StringVar(&c.upstreamKind, "upstream-kind", "livekit", "what --upstream speaks: livekit (LLM, STT and TTS pass through) or openai (LLM only)")
	so := &c.session
	fs.BoolVar(&c.headless, "headless", false, "no interface: events as JSON lines on stdout")
	fs.StringVar(&c.logFile, "log-file", "", "write the embedded gateway's log here (nothing else may write to the terminal under the interface)")
	fs.StringVar(&c.input, "input", "", "a WAV file to use instead of the microphone, paced in real time; the session ends after it and the last reply")
	fs.StringVar(&c.output, "output", "", "a WAV file (16 kHz) recording what reaches the speaker, on the speaker's timeline, instead of playing it")
	fs.StringVar(&c.record, "record", "", "a directory to keep mic.wav, speaker.wav and events.jsonl of the session in")
	fs.BoolVar(&so.NoBargeIn, "no-barge-in", false, "the user cannot interrupt the agent")
	c.aec = true
	fs.Func("aec", "echo cancellation on the microphone, fed by what the speaker plays: on or off (default on; it needs a real microphone and speaker)", func(v string) error {
		switch v {
		case "on":
			c.aec = true
		case "off":
			c.aec = false
		default:
			return fmt.Errorf("want on or off")
		}
		return nil
	})
	fs.BoolVar(&c.halfDuplex, "half-duplex", false, "raise the voice threshold by 10 dB while the agent speaks, even with echo cancellation on (always so with it off)")
	fs.DurationVar(&so.StartSpeech, "speech-start", session.DefaultStartSpeech, "voice before the user counts as speaking")
	fs.DurationVar(&so.EndSilence, "speech-end", session.DefaultEndSilence, "silence that ends the user's turn")
	fs.DurationVar(&so.BargeIn, "barge-in-after", session.DefaultBargeIn, "speech over the agent that interrupts it")
	fs.IntVar(&so.MaxUnrecoverable, "max-unrecoverable-errors", session.DefaultMaxUnrecoverable, "close the session when one stage has more unrecoverable errors than this")
	fs.StringVar(&so.Fallback.ErrorMessage, "error-message", "", "on an unrecoverable close, speak this through TTS (the clip plays when TTS is what failed)")
	fs.StringVar(&c.errorAudio, "error-audio", "", "a WAV file to play instead of the bundled fallback clips")
	fs.BoolVar(&so.Fallback.NoErrorAudio, "no-error-audio", false, "play nothing on an unrecoverable close (the error is still shown)")
	ro := &c.room
	fs.StringVar(&ro.URL, "url", "", "room: the LiveKit server, ws(s)://host:port (default: $LIVEKIT_URL)")
	fs.StringVar(&ro.Token, "token", "", "room: a join token (default: one minted from LIVEKIT_API_KEY and LIVEKIT_API_SECRET)")
	fs.StringVar(&ro.Room, "room", "", "room: the room to join (default: a new one, voicetui-XXXXXX)")
	fs.StringVar(&ro.Identity, "identity", "voicetui-user", "room: your participant identity")
	fs.StringVar(&ro.AgentName, "agent-name", "", "room: dispatch this agent explicitly (default: the workers dispatched to every room)")
	fs.DurationVar(&ro.AgentWait, "agent-wait", room.DefaultAgentWait, "room: how long an agent may take to join before that is an error")
	fs.DurationVar(&ro.AnswerWait, "answer-wait", room.DefaultAnswerWait, "room, console: how long the agent may stay silent after your turn before that is an error")
	fs.DurationVar(&ro.ReconnectWait, "reconnect-wait", room.DefaultReconnectWait, "room: how long a lost connection may take to come back before the conversation ends")
	fs.StringVar(&c.inference, "inference", "embedded", "console: where the agent's inference goes: embedded (an embedded gateway here, with --quota, --fault and --upstream; the default) or direct (the agent's environment is left alone)")
	fs.DurationVar(&c.connectWait, "connect-wait", console.DefaultConnectWait, "console: how long the agent may take to connect after it starts")
	fs.StringVar(&c.qaOut, "out", "qa-report", "qa: the report's directory (index.md and one folder per class)")
	fs.StringVar(&c.qaOnly, "only", "", "qa: run only these classes, comma-separated (default: all; see docs/qa.md)")
	fs.StringVar(&c.qaGateway, "gateway", "", "qa: run against this gateway (base URL ending in /v1) through its control endpoint (--control-token) instead of embedded ones")
	fs.StringVar(&local.Key, "key", localgw.DefaultKey, "gateway: API key its tokens must carry")
	fs.StringVar(&local.ControlToken, "control-token", "", "gateway: the token its control endpoint requires (default: a random one, printed at start)")
	fs.StringVar(&local.Secret, "secret", localgw.DefaultSecret, "gateway: API secret its tokens must be signed with (local QA only: a flag shows in ps)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			help()
			return c, err
		}
		return c, usageError{err.Error()}
	}
	// Flags may also follow the command: voicetui check --seconds 5.
	if rest := fs.Args(); len(rest) > 0 {
		c.command = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			if err == flag.ErrHelp {
				help()
				return c, err
			}
			return c, usageError{err.Error()}
		}
		if c.command == "console" {
			c.agentArgs = fs.Args()
		} else if c.command == "ask" {
			c.prompt = strings.TrimSpace(strings.Join(fs.Args(), " "))
			if c.prompt == "" {
				return c, usageError{"ask: what should I ask? (voicetui ask [flags] TEXT)"}
			}
		} else if fs.NArg() > 0 {
			return c, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
	}
	if c.listDevices {
		c.command = "devices"
	}
	if c.command == "" {
		c.command = "talk"
	}
	if c.errorAudio != "" {
		pcm, f, err := audio.ReadWAVFile(c.errorAudio)
		if err != nil {
			return c, usageError{fmt.Sprintf("--error-audio: %v", err)}
		}
		if f.SampleRate != audio.PipelineRate {
			rs, err := audio.NewResampler(f.SampleRate, audio.PipelineRate)
			if err != nil {
				return c, usageError{fmt.Sprintf("--error-audio: %v", err)}
			}
			pcm = rs.Process(nil, pcm)
		}
		if len(pcm) == 0 {
			return c, usageError{fmt.Sprintf("--error-audio %s holds no audio", c.errorAudio)}
		}
		c.session.Fallback.ErrorAudio = pcm
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"speech-start", c.session.StartSpeech}, {"speech-end", c.session.EndSilence}, {"barge-in-after", c.session.BargeIn}} {
		if d.v < 20*time.Millisecond || d.v > 10*time.Second {
			return c, usageError{fmt.Sprintf("--%s %v: want 20ms to 10s", d.name, d.v)}
		}
	}
	switch {
	case c.session.MaxUnrecoverable < 0:
		return c, usageError{"--max-unrecoverable-errors: want 0 or more"}
	case c.session.MaxUnrecoverable == 0:
		c.session.MaxUnrecoverable = -1 // none tolerated; 0 means "the default" to the session
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"agent-wait", c.room.AgentWait}, {"answer-wait", c.room.AnswerWait}, {"reconnect-wait", c.room.ReconnectWait}, {"connect-wait", c.connectWait}} {
		if d.v < 100*time.Millisecond || d.v > 10*time.Minute {
			return c, usageError{fmt.Sprintf("--%s %v: want 100ms to 10m", d.name, d.v)}
		}
	}
	if c.sttScript != "" {
		b, err := os.ReadFile(c.sttScript)
		if err != nil {
			return c, usageError{fmt.Sprintf("--stt-script: %v", err)}
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				c.provider.Local.STTScript = append(c.provider.Local.STTScript, line)
			}
		}
		if len(c.provider.Local.STTScript) == 0 {
			return c, usageError{fmt.Sprintf("--stt-script %s has no lines", c.sttScript)}
		}
	}
	if c.provider.Local.TokenDelay == 0 {
		c.provider.Local.TokenDelay = -1 // 0 means "default" to localgw
	}
	kind, err := backend.ParseKind(c.backend)
	if err != nil {
		return c, usageError{"--" + err.Error()}
	}
	c.provider.Kind = kind
	if c.upstream != "" {
		if kind != backend.Auto && kind != backend.Embedded {
			return c, usageError{"--upstream puts the embedded gateway in front of a real one: it needs --backend embedded"}
		}
		c.provider.Kind = backend.Embedded
		c.provider.Local.Upstream = &localgw.Upstream{URL: c.upstream, Kind: localgw.UpstreamKind(c.upstreamKind), AllowInsecureHTTP: p.AllowInsecureHTTP}
	}
	if c.inference != "embedded" && c.inference != "direct" {
		return c, usageError{fmt.Sprintf("--inference %q: want embedded or direct", c.inference)}
	}
	if c.inference == "direct" && (c.upstream != "" || len(c.provider.Local.Quotas) > 0 || len(c.provider.Local.Faults) > 0) {
		return c, usageError{"--inference direct leaves the agent's inference alone: --upstream, --quota and --fault need the embedded gateway"}
	}
	if c.seconds <= 0 || c.seconds > 600 {
		return c, usageError{fmt.Sprintf("--seconds %g: want more than 0 and at most 600", c.seconds)}
	}
	return c, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err == flag.ErrHelp {
		return nil
	}
	if err != nil {
		return err
	}
	if c.version {
		printVersion(stdout)
		return nil
	}
	switch c.command {
	case "devices":
		return listDevices(stdout)
	case "check":
		return check(ctx, c, stdout, stderr)
	case "ask":
		return ask(ctx, c, stdout, stderr)
	case "gateway":
		return serveGateway(ctx, c, stderr)
	case "qa":
		return runQA(ctx, c, stdout, stderr)
	case "demo":
		return runDemo(ctx, c, stdout, stderr)
	case "talk", "room", "console":
		if f, ok := stdout.(*os.File); ok && !c.headless {
			c.tui = term.IsTerminal(int(f.Fd()))
		}
		switch c.command {
		case "room":
			return talkInRoom(ctx, c, stdout, stderr)
		case "console":
			return talkToConsoleAgent(ctx, c, stdout, stderr)
		}
		return talk(ctx, c, stdout, stderr)
	default:
		return usageError{fmt.Sprintf("unknown command %q", c.command)}
	}
}

// checkDuration is how long check records.
func (c config) checkDuration() time.Duration {
	return time.Duration(c.seconds * float64(time.Second))
}
