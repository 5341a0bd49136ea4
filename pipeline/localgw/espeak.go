package localgw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/voicetui/voicetui/audio"
)

// Synthesizer turns text into 16-bit mono PCM at Rate, handing it over in
// pieces as it is made.
type Synthesizer interface {
	Rate() int
	Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error
	// Voice maps a requested voice and language to one it has.
	Voice(voice, language string) string
}

// Espeak is espeak-ng run once per sentence, its WAV read as it streams.
type Espeak struct {
	path   string
	voices map[string]bool
}

// EspeakRate is espeak-ng's output rate.
const EspeakRate = 22050

// NewEspeak finds espeak-ng and its voices.
func NewEspeak() (*Espeak, error) {
	path, err := exec.LookPath("espeak-ng")
	if err != nil {
		return nil, errors.New("embedded gateway: espeak-ng is not installed; it speaks the replies (install the espeak-ng package, or run make setup)")
	}
	out, err := exec.Command(path, "--voices").Output()
	if err != nil {
		return nil, fmt.Errorf("embedded gateway: espeak-ng --voices: %w", err)
	}
	e := &Espeak{path: path, voices: map[string]bool{}}
	for _, line := range strings.Split(string(out), "\n")[1:] {
		if f := strings.Fields(line); len(f) >= 2 {
			e.voices[f[1]] = true
		}
	}
	return e, nil
}

func (e *Espeak) Rate() int { return EspeakRate }

// Voice uses the requested voice when espeak-ng has it (e.g. "en-gb"),
// else one for the language, else American English.
func (e *Espeak) Voice(voice, language string) string {
	switch {
	case e.voices[voice]:
		return voice
	case language == "en":
		return "en-us"
	case e.voices[language]:
		return language
	}
	return "en-us"
}

// Synthesize runs espeak-ng with the text on stdin (never as an argument,
// so text cannot pass for an option) and emits 100 ms pieces as they come.
func (e *Espeak) Synthesize(ctx context.Context, text, voice string, emit func([]int16) error) error {
	cmd := exec.CommandContext(ctx, e.path, "--stdout", "-v", voice)
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("espeak-ng: %w", err)
	}
	emitErr := e.read(out, emit)
	if emitErr != nil {
		cmd.Process.Kill()
		io.Copy(io.Discard, out)
	}
	if err := cmd.Wait(); err != nil && emitErr == nil && ctx.Err() == nil {
		return fmt.Errorf("espeak-ng: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return emitErr
}

func (e *Espeak) read(out io.Reader, emit func([]int16) error) error {
	wav, err := audio.NewWAVReader(out, "espeak-ng output")
	if err != nil {
		return err
	}
	if f := wav.Format(); f.SampleRate != EspeakRate || f.Channels != 1 {
		return fmt.Errorf("espeak-ng: unexpected format %v", f)
	}
	buf := make([]int16, EspeakRate/10)
	for {
		n, err := wav.ReadSamples(buf)
		if n > 0 {
			if err := emit(buf[:n]); err != nil {
				return err
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// SpeakAt synthesizes all of text at rate (mono), for whole clips: test
// input, tools.
func (e *Espeak) SpeakAt(ctx context.Context, text, voice string, rate int) ([]int16, error) {
	rs, err := audio.NewResampler(EspeakRate, rate)
	if err != nil {
		return nil, err
	}
	var out []int16
	err = e.Synthesize(ctx, text, voice, func(p []int16) error { out = rs.Process(out, p); return nil })
	return out, err
}
