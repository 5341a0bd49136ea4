package localgw

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/gateway"
	"github.com/voicetui/voicetui/pipeline/provider"
)

// Real recognition through the real STT endpoint and client: pocketsphinx
// (installed by scripts/setup.sh; without it this fails, as it should) on
// espeak-ng speech with a quiet room's noise under it (exact digital
// silence is not what a microphone hears, and throws the recogniser off).
// The floor is below the rate measured in pipeline/localgw/sphinx's
// benchmark (57% of espeak-ng's words recognised): synthetic speech is the
// hard case; it asserts words, not exact strings.
func TestSTTRecognisesSpeech(t *testing.T) {
	_, cfg := start(t, Options{STTEngine: EnginePocketsphinx})
	sentences := []string{"what time is it", "hello there", "can you help me", "tell me a joke", "thank you very much"}
	stt, err := gateway.NewSTT(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := stt.Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	time.AfterFunc(60*time.Second, func() { s.Close() }) // a missing final fails, not hangs
	rng := rand.New(rand.NewPCG(1, 2))
	said, found := 0, 0
	var heard []string
	for _, sentence := range sentences {
		pcm := speech(t, sentence)
		for i := range pcm {
			pcm[i] += int16(rng.IntN(61) - 30) // about -60 dBFS of room noise
		}
		for i := 0; i < len(pcm); i += 800 {
			if err := s.Write(pcm[i:min(i+800, len(pcm))]); err != nil {
				t.Fatal(err)
			}
		}
		// The gateway endpoints by itself in the trailing silence: the
		// final transcript comes without a finalize.
		var final string
		for final == "" {
			ev, err := s.Recv()
			if err != nil {
				t.Fatalf("after %q: %v (heard so far %q)", sentence, err, heard)
			}
			if ev.Type == provider.FinalTranscript {
				final = ev.Text + " "
			}
		}
		heard = append(heard, strings.TrimSpace(final))
		for _, w := range strings.Fields(sentence) {
			said++
			if strings.Contains(" "+final, " "+w+" ") {
				found++
			}
		}
	}
	rate := float64(found) / float64(said)
	t.Logf("recognised %d of %d words (%.0f%%): %q", found, said, 100*rate, heard)
	if rate < 0.4 {
		t.Fatalf("recognised %.0f%% of the words, want at least 40%%: %q", 100*rate, heard)
	}
}

func TestSTTEngineChoice(t *testing.T) {
	if _, err := New(Options{STTEngine: "whisper", Speech: silentSpeech{}}); err == nil || !strings.Contains(err.Error(), "auto, pocketsphinx or energy") {
		t.Fatalf("got %v", err)
	}
	s, err := New(Options{Speech: silentSpeech{}, STTScript: []string{"hi"}, STTEngine: EnginePocketsphinx})
	if err != nil || s.pool != nil {
		t.Fatalf("a script needs no recogniser: %v", err)
	}
}
