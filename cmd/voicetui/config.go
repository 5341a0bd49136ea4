package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"
)

// config is everything the flags say.
type config struct {
	command      string
	listDevices  bool
	inputDevice  string
	outputDevice string
	seconds      float64
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg + " (see voicetui --help)" }

const usage = `voicetui: a terminal voice-agent client.

Usage:
  voicetui devices               list input and output devices
  voicetui check [flags]         record from the microphone with a level
                                 meter, then play the recording back
  voicetui --list-devices        same as 'voicetui devices'

Flags:
`

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("voicetui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&c.listDevices, "list-devices", false, "list audio devices and exit")
	fs.StringVar(&c.inputDevice, "input-device", "", "microphone: an index or a name substring from 'voicetui devices' (default: the system default)")
	fs.StringVar(&c.outputDevice, "output-device", "", "speaker: an index or a name substring from 'voicetui devices' (default: the system default)")
	fs.Float64Var(&c.seconds, "seconds", 3, "check: how long to record")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return c, err
		}
		return c, usageError{err.Error()}
	}
	// Flags may also follow the command: voicetui check --seconds 5.
	if rest := fs.Args(); len(rest) > 0 {
		c.command = rest[0]
		if err := fs.Parse(rest[1:]); err != nil {
			return c, usageError{err.Error()}
		}
		if fs.NArg() > 0 {
			return c, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
		}
	}
	if c.listDevices {
		c.command = "devices"
	}
	if c.command == "" {
		fs.Usage()
		return c, usageError{"no command given: try 'voicetui check'"}
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
	switch c.command {
	case "devices":
		return listDevices(stdout)
	case "check":
		return check(ctx, c, stdout, stderr)
	default:
		return usageError{fmt.Sprintf("unknown command %q", c.command)}
	}
}

// checkDuration is how long check records.
func (c config) checkDuration() time.Duration {
	return time.Duration(c.seconds * float64(time.Second))
}
