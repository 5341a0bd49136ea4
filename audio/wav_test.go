package audio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func writeWAV(t *testing.T, f Format, samples []int16) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "x.wav")
	w, err := CreateWAV(path, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSamples(samples); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestWAVRoundTrip(t *testing.T) {
	for _, f := range []Format{{16000, 1}, {22050, 1}, {44100, 2}, {48000, 2}} {
		t.Run(f.String(), func(t *testing.T) {
			in := sine(f.SampleRate, 440, 0.8, f.SampleRate/10*f.Channels)
			path := writeWAV(t, f, in)
			r, err := OpenWAV(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.Format() != f || r.Samples() != int64(len(in)) {
				t.Fatalf("header says %v, %d samples; want %v, %d", r.Format(), r.Samples(), f, len(in))
			}
			got := make([]int16, len(in)+10)
			n, err := r.ReadSamples(got)
			if err != nil || !slices.Equal(got[:n], in) {
				t.Fatalf("read %d samples (err %v), not the %d written", n, err, len(in))
			}
			if _, err := r.ReadSamples(got); !errors.Is(err, io.EOF) {
				t.Fatalf("after the data: %v, want io.EOF", err)
			}
		})
	}
}

func TestWAVStereoDownmix(t *testing.T) {
	path := writeWAV(t, Format{8000, 2}, []int16{100, 300, -100, -300, 32767, 32767})
	mono, f, err := ReadWAVFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f != (Format{8000, 1}) || !slices.Equal(mono, []int16{200, -200, 32767}) {
		t.Fatalf("got %v %v", f, mono)
	}
}

// header builds a WAV header with the given fields for malformed-file tests.
func header(tag, channels uint16, rate uint32, bits uint16, dataBytes uint32) []byte {
	f := Format{SampleRate: int(rate), Channels: int(channels)}
	h := wavHeader(f, dataBytes)
	binary.LittleEndian.PutUint16(h[20:], tag)
	binary.LittleEndian.PutUint16(h[34:], bits)
	binary.LittleEndian.PutUint16(h[32:], channels*bits/8)
	return h
}

func TestWAVMalformed(t *testing.T) {
	pcm := make([]byte, 400)
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "shorter than a RIFF header"},
		{"text", []byte("hello, this is not audio at all"), "no RIFF/WAVE signature"},
		{"riff only", []byte("RIFF\x00\x00\x00\x00WAVE"), "no fmt chunk"},
		{"float", append(header(3, 1, 16000, 32, 400), pcm...), "not PCM"},
		{"8 bit", append(header(1, 1, 16000, 8, 400), pcm...), "8-bit samples"},
		{"zero channels", append(header(1, 0, 16000, 16, 400), pcm...), "unsupported channel count 0"},
		{"six channels", append(header(1, 6, 16000, 16, 400), pcm...), "unsupported channel count 6"},
		{"zero rate", append(header(1, 1, 0, 16, 400), pcm...), "unsupported sample rate 0"},
		{"truncated", append(header(1, 1, 16000, 16, 4000), pcm...), "truncated: data chunk declares 4000 bytes but the file holds 400"},
		{"no data", header(1, 1, 16000, 16, 0)[:36], "no data chunk"},
		{"data first", []byte("RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00"), "data chunk comes before the fmt chunk"},
		{"huge chunk", []byte("RIFF\x00\x00\x00\x00WAVELIST\xff\xff\xff\x7f"), "too large to skip"},
		{"short fmt", []byte("RIFF\x00\x00\x00\x00WAVEfmt \x08\x00\x00\x00\x01\x00\x01\x00"), "fmt chunk has 8 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.wav")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenWAV(path)
			var we *WAVError
			if !errors.As(err, &we) {
				t.Fatalf("OpenWAV = %v, want a *WAVError", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q should name the file and say %q", err, tc.want)
			}
		})
	}
}

func TestWAVMissingFile(t *testing.T) {
	_, err := OpenWAV("/nonexistent/voice.wav")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/voice.wav: cannot open") {
		t.Fatalf("got %v", err)
	}
}

func TestWAVTruncatedStream(t *testing.T) {
	// A pipe cannot be measured up front: truncation shows when reading.
	data := append(header(1, 1, 16000, 16, 1000), make([]byte, 600)...)
	r, err := NewWAVReader(bytes.NewReader(data), "pipe.wav")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 1000)
	n, err := r.ReadSamples(buf)
	if n != 300 || err == nil || !strings.Contains(err.Error(), "pipe.wav: truncated") {
		t.Fatalf("got %d samples, %v; want 300 and a truncation error", n, err)
	}
}

func TestWAVUnknownLengthRunsToEOF(t *testing.T) {
	data := append(header(1, 1, 16000, 16, 0xFFFFFFFF), make([]byte, 600)...)
	r, err := NewWAVReader(bytes.NewReader(data), "stream.wav")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]int16, 1000)
	if n, err := r.ReadSamples(buf); n != 300 || err != nil {
		t.Fatalf("got %d, %v; want 300, nil", n, err)
	}
	if _, err := r.ReadSamples(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("got %v, want EOF", err)
	}
}

func TestWAVSourcePacesInRealTime(t *testing.T) {
	f := Format{16000, 2}
	path := writeWAV(t, f, sine(16000, 300, 0.5, 2*1600)) // 100 ms stereo
	s, err := NewWAVSource(path, &WAVSourceOptions{Realtime: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Format() != (Format{16000, 1}) {
		t.Fatalf("format %v, want mono", s.Format())
	}
	start := time.Now()
	total := 0
	buf := make([]int16, 4096)
	for {
		n, err := s.Read(context.Background(), buf)
		total += n
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if total != 1600 {
		t.Fatalf("read %d mono samples, want 1600", total)
	}
	// Pacing means it cannot finish before the audio's own duration.
	if el := time.Since(start); el < 100*time.Millisecond {
		t.Fatalf("100 ms of audio delivered in %v: not paced", el)
	}
}

func TestWAVSinkRecordsWhatIsWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	sink, err := NewWAVSink(path, Format{24000, 1})
	if err != nil {
		t.Fatal(err)
	}
	a, b := sine(24000, 300, 0.5, 2400), sine(24000, 600, 0.5, 1200)
	for _, p := range [][]int16{a, b} {
		if n, err := sink.Write(context.Background(), p); err != nil || n != len(p) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	got, f, err := ReadWAVFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if f != (Format{24000, 1}) || !slices.Equal(got, append(a, b...)) {
		t.Fatalf("read back %v, %d samples; want %d in order", f, len(got), len(a)+len(b))
	}
	if _, err := NewWAVSink(filepath.Join(t.TempDir(), "no", "dir.wav"), Format{24000, 1}); err == nil ||
		!strings.Contains(err.Error(), "cannot create") {
		t.Fatalf("unwritable path: %v", err)
	}
}

func FuzzWAVHeader(f *testing.F) {
	f.Add(wavHeader(Format{16000, 1}, 4))
	f.Add(append(header(1, 2, 44100, 16, 8), make([]byte, 8)...))
	f.Add([]byte("RIFF\x00\x00\x00\x00WAVELIST\x04\x00\x00\x00abcdfmt "))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewWAVReader(bytes.NewReader(data), "fuzz.wav")
		if err != nil {
			var we *WAVError
			if !errors.As(err, &we) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := r.Format().Validate(); err != nil {
			t.Fatalf("accepted invalid format: %v", err)
		}
		buf := make([]int16, 64)
		for range 1000 {
			if _, err := r.ReadSamples(buf); err != nil {
				return
			}
		}
	})
}

func TestEncodeWAVReadsBack(t *testing.T) {
	in := []int16{0, 1, -1, 32767, -32768, 1234}
	r, err := NewWAVReader(bytes.NewReader(EncodeWAV(in, Pipeline)), "mem.wav")
	if err != nil {
		t.Fatal(err)
	}
	if r.Format() != Pipeline || r.Samples() != int64(len(in)) {
		t.Fatalf("format %v samples %d", r.Format(), r.Samples())
	}
	out := make([]int16, 10)
	n, _ := r.ReadSamples(out)
	if !slices.Equal(out[:n], in) {
		t.Fatalf("read back %v, want %v", out[:n], in)
	}
}

func TestWAVStreamingSizeRunsToEOF(t *testing.T) {
	for _, size := range []uint32{0xFFFFFFFF, 0x7FFFF000} {
		h := wavHeader(Pipeline, 0)
		binary.LittleEndian.PutUint32(h[40:], size)
		data := append(h, 1, 0, 2, 0, 3, 0)
		r, err := NewWAVReader(bytes.NewReader(data), "stream.wav")
		if err != nil {
			t.Fatal(err)
		}
		p := make([]int16, 10)
		n, err := r.ReadSamples(p)
		if n != 3 || err != nil || p[2] != 3 {
			t.Fatalf("size %#x: %d %v", size, n, err)
		}
		if _, err := r.ReadSamples(p); err != io.EOF {
			t.Fatalf("size %#x: want EOF, got %v", size, err)
		}
	}
}

// A recording is someone's voice: owner only, an existing file included.
func TestCreateWAVIsPrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.wav")
	if err := os.WriteFile(path, []byte("older"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := CreateWAV(path, Pipeline)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v", st.Mode(), err)
	}
	// A device is not chmodded (nor could it be).
	w, err = CreateWAV(os.DevNull, Pipeline)
	if err != nil {
		t.Fatalf("/dev/null: %v", err)
	}
	w.Close()
}
