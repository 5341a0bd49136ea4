// Package speechtest builds test input of real synthetic speech: espeak-ng
// sentences and silences in a 16 kHz WAV, as a microphone would hear them.
package speechtest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/localgw"
)

// WAV writes parts (a string is spoken, a time.Duration is silence) to a
// 16 kHz mono WAV in a temporary directory and returns its path.
func WAV(t testing.TB, parts ...any) string {
	t.Helper()
	e, err := localgw.NewEspeak()
	if err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for _, p := range parts {
		switch v := p.(type) {
		case string:
			s, err := e.SpeakAt(context.Background(), v, "en-us", audio.PipelineRate)
			if err != nil {
				t.Fatal(err)
			}
			pcm = append(pcm, s...)
		case time.Duration:
			pcm = append(pcm, make([]int16, int(v.Seconds()*audio.PipelineRate))...)
		default:
			t.Fatalf("speechtest: %T is neither speech nor silence", p)
		}
	}
	path := filepath.Join(t.TempDir(), "speech.wav")
	w, err := audio.CreateWAV(path, audio.Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(pcm); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}
