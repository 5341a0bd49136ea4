package sphinx_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireSphinx fails when recognition cannot run here: these tests are
// the proof that it does. The one exception is macOS, where it cannot run
// by design (Homebrew ships pocketsphinx 5, another API): there the test
// checks that it says so, and stops.
func requireSphinx(tb testing.TB) {
	tb.Helper()
	err := sphinx.Available()
	if err == nil {
		return
	}
	if !errors.Is(err, sphinx.ErrUnavailable) {
		tb.Errorf("Available's error does not wrap ErrUnavailable: %v", err)
	}
	if runtime.GOOS == "darwin" {
		tb.Skipf("macOS: recognition is unavailable by design (Homebrew's pocketsphinx 5 has another API): %v", err)
	}
	tb.Fatalf("these tests need pocketsphinx and its en-us model: install libpocketsphinx3 pocketsphinx-en-us (scripts/setup.sh)\n%v", err)
}

// newDecoder is a decoder closed when the test ends.
func newDecoder(tb testing.TB, cfg sphinx.Config) *sphinx.Decoder {
	tb.Helper()
	d, err := sphinx.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// sentences are everyday requests: the demo agent's words (help, time,
// hello, goodbye) and general ones it would repeat back.
var sentences = []string{
	"what time is it",
	"hello there",
	"can you help me",
	"goodbye see you later",
	"what is the weather like today",
	"set a timer for five minutes",
	"thank you very much",
	"play some music",
	"remind me to buy milk",
	"open the front door",
}

// moreSentences are thirty more of everyday speech, for the benchmark:
// ten sentences (42 words) move its word error rate by 2.4 % a word.
var moreSentences = []string{
	"how are you doing today",
	"i would like to order a pizza",
	"call my mother tomorrow morning",
	"turn off the lights in the kitchen",
	"what is the capital of france",
	"tell me a joke",
	"how long does it take to drive to work",
	"please send an email to my boss",
	"where is the nearest coffee shop",
	"i need to book a table for two",
	"what did you say",
	"can you repeat that please",
	"the meeting starts at three o'clock",
	"my flight leaves on monday",
	"how much does it cost",
	"is it going to rain this weekend",
	"read me the news",
	"add eggs and bread to the shopping list",
	"what is your name",
	"i am looking for a good book",
	"let's talk about something else",
	"that sounds like a great idea",
	"do you know any good restaurants nearby",
	"wake me up at seven",
	"how do i get to the train station",
	"stop the music",
	"what day is it today",
	"i don't understand the question",
	"can you speak more slowly",
	"thanks for your help",
}

// A voice synthesizes a sentence as 16 kHz mono PCM.
type voice struct {
	name  string
	speak func(tb testing.TB, text string) []int16
}

// espeakVoice is espeak-ng's en-us voice, through the embedded gateway's
// own synthesizer code.
func espeakVoice(tb testing.TB) voice {
	tb.Helper()
	e, err := localgw.NewEspeak()
	if err != nil {
		tb.Fatalf("%v\n(install espeak-ng: scripts/setup.sh)", err)
	}
	return voice{"espeak", func(tb testing.TB, text string) []int16 {
		tb.Helper()
		pcm, err := e.SpeakAt(context.Background(), text, "en-us", sphinx.SampleRate)
		if err != nil {
			tb.Fatal(err)
		}
		return pcm
	}}
}

// fliteVoice is Debian flite's slt voice: a US English woman, much closer
// to natural speech than espeak-ng.
func fliteVoice(tb testing.TB) voice {
	tb.Helper()
	path, err := exec.LookPath("flite")
	if err != nil {
		tb.Fatal("flite is not installed; it is the second test voice: install flite (scripts/setup.sh)")
	}
	return voice{"flite", func(tb testing.TB, text string) []int16 {
		tb.Helper()
		dir := tb.TempDir()
		in, out := filepath.Join(dir, "text.txt"), filepath.Join(dir, "speech.wav")
		if err := os.WriteFile(in, []byte(text), 0o644); err != nil {
			tb.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(path, "-voice", "slt", "-f", in, "-o", out)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			tb.Fatalf("flite: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		return readWAV(tb, out)
	}}
}

// readWAV reads a mono WAV at SampleRate (resampled when it is not).
func readWAV(tb testing.TB, path string) []int16 {
	tb.Helper()
	r, err := audio.OpenWAV(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer r.Close()
	f := r.Format()
	if f.Channels != 1 {
		tb.Fatalf("%s: %v, want mono", path, f)
	}
	var pcm []int16
	buf := make([]int16, 4096)
	for {
		n, err := r.ReadSamples(buf)
		pcm = append(pcm, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	if f.SampleRate == sphinx.SampleRate {
		return pcm
	}
	rs, err := audio.NewResampler(f.SampleRate, sphinx.SampleRate)
	if err != nil {
		tb.Fatal(err)
	}
	return rs.Process(nil, pcm)
}

// utterance is speech between 300 ms pauses with faint white noise
// (-60 dBFS) over all of it, as a microphone hears a short turn: a real
// microphone never gives digital silence, and the decoder's noise and
// silence estimates assume it does not. The noise is the same each run.
func utterance(speech []int16) []int16 {
	pad := make([]int16, sphinx.SampleRate*3/10)
	out := append(append(append([]int16{}, pad...), speech...), pad...)
	r := rand.New(rand.NewPCG(uint64(len(speech)), 7))
	amp := 32768 * math.Pow(10, -60.0/20)
	for i, v := range out {
		out[i] = int16(max(-32768, min(32767, math.Round(float64(v)+r.NormFloat64()*amp))))
	}
	return out
}

// chunk is 50 ms, one input_audio message of the gateway's STT protocol.
const chunk = sphinx.SampleRate / 20

// decode writes pcm in 50 ms chunks, asking for a partial result every
// 250 ms as an interim transcript would, and returns the final
// hypothesis. It is safe in any goroutine (recognize is not).
func decode(d *sphinx.Decoder, pcm []int16) (string, error) {
	for i := 0; i < len(pcm); i += chunk {
		if err := d.Write(pcm[i:min(i+chunk, len(pcm))]); err != nil {
			return "", err
		}
		if (i/chunk)%5 == 4 {
			if _, err := d.Partial(); err != nil {
				return "", err
			}
		}
	}
	return d.End()
}

// recognize is decode in the test's goroutine, failing the test on error.
func recognize(tb testing.TB, d *sphinx.Decoder, pcm []int16) string {
	tb.Helper()
	text, err := decode(d, pcm)
	if err != nil {
		tb.Fatal(err)
	}
	return text
}
