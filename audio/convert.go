package audio

import (
	"context"
	"fmt"
	"io"
)

// Resampled returns a mono source converted to rate; src itself when it
// already is at rate.
func Resampled(src Source, rate int) (Source, error) {
	f := src.Format()
	if f.Channels != 1 {
		return nil, fmt.Errorf("audio: resampling needs a mono source, not %d channels", f.Channels)
	}
	if f.SampleRate == rate {
		return src, nil
	}
	rs, err := NewResampler(f.SampleRate, rate)
	if err != nil {
		return nil, err
	}
	return &resampled{src: src, rs: rs, format: Format{SampleRate: rate, Channels: 1}}, nil
}

type resampled struct {
	src     Source
	rs      *Resampler
	format  Format
	in, out []int16
	ended   bool
}

func (r *resampled) Format() Format { return r.format }
func (r *resampled) Close() error   { return r.src.Close() }

func (r *resampled) Read(ctx context.Context, p []int16) (int, error) {
	for len(r.out) == 0 {
		if r.ended {
			return 0, io.EOF
		}
		if cap(r.in) < len(p) {
			r.in = make([]int16, len(p))
		}
		n, err := r.src.Read(ctx, r.in[:len(p)])
		r.out = r.rs.Process(r.out[:0], r.in[:n])
		if err == io.EOF {
			r.out = r.rs.Process(r.out, make([]int16, r.rs.Delay())) // the filter's tail
			r.ended = true
		} else if err != nil {
			return 0, err
		}
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}
