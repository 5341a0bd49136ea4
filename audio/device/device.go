// Package device lists audio devices and captures from a microphone through
// PortAudio. It is the only package that links PortAudio.
package device

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/gordonklaus/portaudio"

	"github.com/voicetui/voicetui/audio"
)

// Direction says whether a device records or plays.
type Direction int

const (
	Input Direction = iota + 1
	Output
)

func (d Direction) String() string {
	switch d {
	case Input:
		return "input"
	case Output:
		return "output"
	}
	return "unknown"
}

// Info describes one device.
type Info struct {
	Index             int
	Name              string
	HostAPI           string
	InputChannels     int
	OutputChannels    int
	DefaultSampleRate float64
	DefaultInput      bool
	DefaultOutput     bool
}

// Supports says whether the device can be used in direction d.
func (i Info) Supports(d Direction) bool {
	if d == Input {
		return i.InputChannels > 0
	}
	return i.OutputChannels > 0
}

// Init initialises PortAudio (silencing ALSA and JACK first). Every
// successful Init must be paired with a call to the returned release.
func Init() (release func(), err error) {
	Quiet()
	if err := portaudio.Initialize(); err != nil {
		return nil, fmt.Errorf("device: initialise PortAudio: %w", err)
	}
	return func() { portaudio.Terminate() }, nil
}

// List returns every device PortAudio knows. Init must have been called.
func List() ([]Info, error) {
	devs, err := portaudio.Devices()
	if err != nil {
		return nil, fmt.Errorf("device: list: %w", err)
	}
	var defIn, defOut *portaudio.DeviceInfo
	if h, err := portaudio.DefaultHostApi(); err == nil {
		defIn, defOut = h.DefaultInputDevice, h.DefaultOutputDevice
	}
	out := make([]Info, 0, len(devs))
	for _, d := range devs {
		info := Info{
			Index:             d.Index,
			Name:              d.Name,
			InputChannels:     d.MaxInputChannels,
			OutputChannels:    d.MaxOutputChannels,
			DefaultSampleRate: d.DefaultSampleRate,
			DefaultInput:      defIn != nil && d.Index == defIn.Index,
			DefaultOutput:     defOut != nil && d.Index == defOut.Index,
		}
		if d.HostApi != nil {
			info.HostAPI = d.HostApi.Name
		}
		out = append(out, info)
	}
	return out, nil
}

// Resolve picks the device for d: the default one when selector is empty,
// the one with that index when selector is a number, otherwise the one
// whose name contains selector (case-insensitive; an exact name wins over
// substrings). Errors wrap audio.ErrNoInputDevice/ErrNoOutputDevice or
// audio.ErrUnknownDevice inside an *audio.DeviceError.
func Resolve(devs []Info, d Direction, selector string) (Info, error) {
	fail := func(err error) (Info, error) {
		return Info{}, &audio.DeviceError{Direction: d.String(), Device: selector, Op: "select", Err: err}
	}
	none := audio.ErrNoInputDevice
	if d == Output {
		none = audio.ErrNoOutputDevice
	}
	var usable []Info
	for _, i := range devs {
		if i.Supports(d) {
			usable = append(usable, i)
		}
	}
	if len(usable) == 0 {
		return fail(none)
	}
	selector = strings.TrimSpace(selector)
	if selector == "" {
		for _, i := range usable {
			if (d == Input && i.DefaultInput) || (d == Output && i.DefaultOutput) {
				return i, nil
			}
		}
		return usable[0], nil
	}
	if n, err := strconv.Atoi(selector); err == nil {
		for _, i := range devs {
			if i.Index == n {
				if !i.Supports(d) {
					return fail(fmt.Errorf("device %d (%s) has no %s channels", n, i.Name, d))
				}
				return i, nil
			}
		}
		return fail(fmt.Errorf("%w: no device has index %d", audio.ErrUnknownDevice, n))
	}
	var matches []Info
	for _, i := range usable {
		if strings.EqualFold(i.Name, selector) {
			return i, nil
		}
		if strings.Contains(strings.ToLower(i.Name), strings.ToLower(selector)) {
			matches = append(matches, i)
		}
	}
	switch len(matches) {
	case 0:
		return fail(fmt.Errorf("%w: no %s device name contains %q", audio.ErrUnknownDevice, d, selector))
	case 1:
		return matches[0], nil
	}
	names := make([]string, len(matches))
	for k, m := range matches {
		names[k] = fmt.Sprintf("%d %q", m.Index, m.Name)
	}
	return fail(fmt.Errorf("%w: %q matches several %s devices (%s): give an index", audio.ErrUnknownDevice, selector, d, strings.Join(names, ", ")))
}

// WriteTable prints devs as the table `voicetui devices` shows.
func WriteTable(w io.Writer, devs []Info) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "INDEX\tDIRECTION\tDEFAULT\tRATE\tNAME")
	for _, dir := range []Direction{Input, Output} {
		for _, i := range devs {
			if !i.Supports(dir) {
				continue
			}
			def := ""
			if (dir == Input && i.DefaultInput) || (dir == Output && i.DefaultOutput) {
				def = "*"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.0f Hz\t%s\n", i.Index, dir, def, i.DefaultSampleRate, i.Name)
		}
	}
	return tw.Flush()
}

// paError unwraps PortAudio's error into something printable.
func paError(err error) error {
	var pe portaudio.Error
	if errors.As(err, &pe) {
		return errors.New(strings.ToLower(pe.Error()))
	}
	return err
}
