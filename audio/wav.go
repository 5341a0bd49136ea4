package audio

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// WAV files are read and written here rather than with go-audio/wav: that
// decoder has panicked on malformed channel and alignment headers, reports a
// truncated data chunk as a short read instead of an error, and cannot say
// which file was wrong. Voicetui reads user-supplied WAVs (--input,
// --error-audio), so the parser below is strict, streaming, names the file
// in every error and is fuzzed (FuzzWAVHeader).

// WAVError reports a WAV file that cannot be used.
type WAVError struct {
	File    string
	Problem string
	Err     error // underlying I/O error, if any
}

func (e *WAVError) Error() string {
	msg := "wav " + e.File + ": " + e.Problem
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *WAVError) Unwrap() error { return e.Err }

const (
	wavFormatPCM        = 1
	wavFormatExtensible = 0xFFFE
	// Streaming writers cannot know the size: sox writes 0xFFFFFFFF,
	// espeak-ng 0x7FFFF000. From there up, the data runs to EOF.
	wavStreamingSize = 0x7FFFF000
	maxChunkSkip     = 16 << 20 // refuse to skip absurd metadata chunks
)

// WAVReader streams the samples of a 16-bit PCM WAV file.
type WAVReader struct {
	name      string
	r         *bufio.Reader
	closer    io.Closer
	format    Format
	dataBytes int64 // declared size of the data chunk; -1 = until EOF
	left      int64 // bytes of the data chunk not read yet; -1 = until EOF
	scratch   []byte
}

// OpenWAV opens and validates a WAV file. A data chunk that claims more
// bytes than the file holds is reported here, before any audio is used.
func OpenWAV(path string) (*WAVReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &WAVError{File: path, Problem: "cannot open", Err: unwrapPath(err)}
	}
	w, err := NewWAVReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	w.closer = f
	if w.dataBytes >= 0 {
		st, err := f.Stat()
		if err == nil {
			pos, _ := f.Seek(0, io.SeekCurrent)
			have := st.Size() - (pos - int64(w.r.Buffered()))
			if have < w.dataBytes {
				f.Close()
				return nil, &WAVError{File: path, Problem: fmt.Sprintf(
					"truncated: data chunk declares %d bytes but the file holds %d", w.dataBytes, have)}
			}
		}
	}
	return w, nil
}

// NewWAVReader parses a WAV header from r; name is used in errors.
func NewWAVReader(r io.Reader, name string) (*WAVReader, error) {
	w := &WAVReader{name: name, r: bufio.NewReaderSize(r, 32<<10)}
	if err := w.readHeader(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *WAVReader) bad(problem string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &WAVError{File: w.name, Problem: problem + " (file ends early)"}
	}
	return &WAVError{File: w.name, Problem: problem, Err: err}
}

func (w *WAVReader) readHeader() error {
	var riff [12]byte
	if _, err := io.ReadFull(w.r, riff[:]); err != nil {
		return w.bad("not a WAV file: shorter than a RIFF header", err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return w.bad("not a WAV file: no RIFF/WAVE signature", nil)
	}
	var haveFmt bool
	for {
		var hdr [8]byte
		if _, err := io.ReadFull(w.r, hdr[:]); err != nil {
			if !haveFmt {
				return w.bad("no fmt chunk", err)
			}
			return w.bad("no data chunk", err)
		}
		id := string(hdr[0:4])
		size := binary.LittleEndian.Uint32(hdr[4:8])
		switch id {
		case "fmt ":
			if err := w.readFmt(size); err != nil {
				return err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return w.bad("data chunk comes before the fmt chunk", nil)
			}
			w.dataBytes, w.left = int64(size), int64(size)
			if size >= wavStreamingSize {
				w.dataBytes, w.left = -1, -1
			}
			return nil
		default:
			skip := int64(size) + int64(size&1) // chunks are word-aligned
			if skip > maxChunkSkip {
				return w.bad(fmt.Sprintf("chunk %q of %d bytes is too large to skip", printable(id), size), nil)
			}
			if _, err := io.CopyN(io.Discard, w.r, skip); err != nil {
				return w.bad(fmt.Sprintf("chunk %q", printable(id)), err)
			}
		}
	}
}

func (w *WAVReader) readFmt(size uint32) error {
	if size < 16 || size > 1024 {
		return w.bad(fmt.Sprintf("fmt chunk has %d bytes, want 16 to 1024", size), nil)
	}
	b := make([]byte, size+size&1)
	if _, err := io.ReadFull(w.r, b); err != nil {
		return w.bad("fmt chunk", err)
	}
	tag := binary.LittleEndian.Uint16(b[0:2])
	channels := int(binary.LittleEndian.Uint16(b[2:4]))
	rate := int(binary.LittleEndian.Uint32(b[4:8]))
	align := int(binary.LittleEndian.Uint16(b[12:14]))
	bits := int(binary.LittleEndian.Uint16(b[14:16]))
	if tag == wavFormatExtensible && size >= 40 {
		tag = binary.LittleEndian.Uint16(b[24:26]) // sub-format GUID starts with the tag
	}
	if tag != wavFormatPCM {
		return w.bad(fmt.Sprintf("encoding %#x is not PCM (convert it: sox in.wav -b 16 -e signed out.wav)", tag), nil)
	}
	if bits != 16 {
		return w.bad(fmt.Sprintf("%d-bit samples, want 16-bit (convert it: sox in.wav -b 16 out.wav)", bits), nil)
	}
	w.format = Format{SampleRate: rate, Channels: channels}
	if err := w.format.Validate(); err != nil {
		return w.bad(err.Error(), nil)
	}
	if align != 2*channels {
		return w.bad(fmt.Sprintf("block align %d does not match %d channels of 16 bits", align, channels), nil)
	}
	return nil
}

// Format is the file's format.
func (w *WAVReader) Format() Format { return w.format }

// Samples is the number of interleaved samples the data chunk declares, or
// -1 when the file was written by a tool that did not know its length.
func (w *WAVReader) Samples() int64 {
	if w.dataBytes < 0 {
		return -1
	}
	return w.dataBytes / 2
}

// ReadSamples reads interleaved samples into p. It returns io.EOF at the
// end of the data and a *WAVError if the file ends before the data chunk
// does.
func (w *WAVReader) ReadSamples(p []int16) (int, error) {
	want := int64(len(p)) * 2
	if w.left >= 0 {
		want = min(want, w.left&^1)
	}
	if want == 0 {
		return 0, io.EOF
	}
	if cap(w.scratch) < int(want) {
		w.scratch = make([]byte, want)
	}
	buf := w.scratch[:want]
	n, err := io.ReadFull(w.r, buf)
	n &^= 1
	for i := 0; i < n/2; i++ {
		p[i] = int16(binary.LittleEndian.Uint16(buf[2*i:]))
	}
	if w.left >= 0 {
		w.left -= int64(n)
	}
	switch {
	case err == nil:
		return n / 2, nil
	case w.left < 0 && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)):
		if n == 0 {
			return 0, io.EOF
		}
		return n / 2, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return n / 2, &WAVError{File: w.name, Problem: fmt.Sprintf(
			"truncated: data chunk declares %d bytes but the file ends after %d", w.dataBytes, w.dataBytes-w.left)}
	default:
		return n / 2, w.bad("read", err)
	}
}

// Close closes the underlying file, if OpenWAV opened it.
func (w *WAVReader) Close() error {
	if w.closer == nil {
		return nil
	}
	c := w.closer
	w.closer = nil
	return c.Close()
}

// ReadWAVFile reads a whole WAV file, downmixed to mono.
func ReadWAVFile(path string) ([]int16, Format, error) {
	w, err := OpenWAV(path)
	if err != nil {
		return nil, Format{}, err
	}
	defer w.Close()
	var all []int16
	if n := w.Samples(); n > 0 {
		all = make([]int16, 0, n)
	}
	buf := make([]int16, 8192)
	for {
		n, err := w.ReadSamples(buf)
		all = append(all, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, Format{}, err
		}
	}
	f := w.Format()
	if f.Channels == 2 {
		all = DownmixStereo(all[:len(all)&^1], all[:0])
		f.Channels = 1
	}
	return all, f, nil
}

// DownmixStereo averages interleaved stereo pairs into mono, appending to
// dst. dst may alias src (it is written no faster than src is read).
func DownmixStereo(src, dst []int16) []int16 {
	for i := 0; i+1 < len(src); i += 2 {
		dst = append(dst, int16((int32(src[i])+int32(src[i+1]))/2))
	}
	return dst
}

// WAVWriter writes a 16-bit PCM WAV file. The header's sizes are patched
// on Close, so the file is valid once closed.
type WAVWriter struct {
	name   string
	f      *os.File
	bw     *bufio.Writer
	format Format
	bytes  int64
	buf    []byte
	err    error
}

// CreateWAV creates (or truncates) path for writing samples in format f.
// What it records is someone's voice: the file is readable by its owner
// only (0600), an existing one included.
func CreateWAV(path string, f Format) (*WAVWriter, error) {
	if err := f.Validate(); err != nil {
		return nil, &WAVError{File: path, Problem: err.Error()}
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, &WAVError{File: path, Problem: "cannot create", Err: unwrapPath(err)}
	}
	if err := makePrivate(file); err != nil {
		file.Close()
		return nil, &WAVError{File: path, Problem: "cannot make it private (chmod 600)", Err: unwrapPath(err)}
	}
	w := &WAVWriter{name: path, f: file, bw: bufio.NewWriterSize(file, 64<<10), format: f}
	if _, err := w.bw.Write(wavHeader(f, 0)); err != nil {
		file.Close()
		return nil, &WAVError{File: path, Problem: "write header", Err: err}
	}
	return w, nil
}

// EncodeWAV returns samples in format f as a complete WAV file in memory
// (for uploads such as a transcription request).
func EncodeWAV(samples []int16, f Format) []byte {
	b := wavHeader(f, uint32(len(samples)*2))
	for _, v := range samples {
		b = binary.LittleEndian.AppendUint16(b, uint16(v))
	}
	return b
}

func wavHeader(f Format, dataBytes uint32) []byte {
	h := make([]byte, 44, 44+int(dataBytes))
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], wavFormatPCM)
	binary.LittleEndian.PutUint16(h[22:], uint16(f.Channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(f.SampleRate))
	binary.LittleEndian.PutUint32(h[28:], uint32(f.SampleRate*f.Channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(f.Channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

// Format is the file's format.
func (w *WAVWriter) Format() Format { return w.format }

// WriteSamples appends interleaved samples.
func (w *WAVWriter) WriteSamples(p []int16) error {
	if w.err != nil {
		return w.err
	}
	if w.bytes+int64(len(p))*2 > 0xFFFFFFFF-36 {
		w.err = &WAVError{File: w.name, Problem: "file would exceed the 4 GiB WAV limit"}
		return w.err
	}
	if cap(w.buf) < 2*len(p) {
		w.buf = make([]byte, 2*len(p))
	}
	b := w.buf[:2*len(p)]
	for i, s := range p {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(s))
	}
	if _, err := w.bw.Write(b); err != nil {
		w.err = &WAVError{File: w.name, Problem: "write", Err: err}
		return w.err
	}
	w.bytes += int64(len(b))
	return nil
}

// Close flushes, patches the header's sizes and closes the file.
func (w *WAVWriter) Close() error {
	if w.f == nil {
		return w.err
	}
	f := w.f
	w.f = nil
	err := w.bw.Flush()
	if err == nil {
		_, err = f.WriteAt(wavHeader(w.format, uint32(w.bytes)), 0)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && w.err == nil {
		w.err = &WAVError{File: w.name, Problem: "finish file", Err: err}
	}
	return w.err
}

// makePrivate takes group and other permissions away from a regular file
// that has them (one created earlier, or under a loose umask). Devices
// such as /dev/null are left alone.
func makePrivate(f *os.File) error {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm()&0o077 == 0 {
		return err
	}
	return f.Chmod(st.Mode().Perm() &^ 0o077)
}
