package sphinx_test

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw/sphinx"
)

// BenchmarkWER is recognition quality and speed with the default model on
// forty everyday sentences (sentences and moreSentences: 214 words), spoken
// by two synthetic voices: espeak-ng
// (robotic, the voice of the gateway's own tests) and flite's slt (close to
// natural speech). A fresh decoder per voice; 50 ms chunks with a partial
// every 250 ms, as the gateway would. Two conditions:
//
//   - mic: a -60 dBFS noise floor over pauses and speech, as from a quiet
//     room through a microphone;
//   - digital-silence: the synthesizer's output as is, as from a muted
//     microphone or a generated WAV file.
//
// Metrics: wer_<voice>_% (word error rate), x_realtime (audio seconds
// decoded per second of Write and End), end_ms and end_max_ms (End's
// mean and longest time: the wait for the final transcript).
func BenchmarkWER(b *testing.B) {
	requireSphinx(b)
	voices := []voice{espeakVoice(b), fliteVoice(b)}
	sentences := append(slices.Clone(sentences), moreSentences...)
	speech := make([][][]int16, len(voices))
	for i, v := range voices {
		for _, s := range sentences {
			speech[i] = append(speech[i], v.speak(b, s))
		}
	}
	for _, cond := range []struct {
		name    string
		prepare func([]int16) []int16
	}{
		{"mic", utterance},
		{"digital-silence", func(p []int16) []int16 {
			pad := make([]int16, sphinx.SampleRate*3/10)
			return append(append(append([]int16{}, pad...), p...), pad...)
		}},
	} {
		b.Run(cond.name, func(b *testing.B) {
			clips := make([][][]int16, len(voices))
			for i := range voices {
				for _, p := range speech[i] {
					clips[i] = append(clips[i], cond.prepare(p))
				}
			}
			scores := make([]score, len(voices))
			var audioSec float64
			var decodeTime, endTime, endMax time.Duration
			var ends int
			for b.Loop() {
				for i, v := range voices {
					d := newDecoder(b, sphinx.Config{})
					for j, pcm := range clips[i] {
						start := time.Now()
						for k := 0; k < len(pcm); k += chunk {
							if err := d.Write(pcm[k:min(k+chunk, len(pcm))]); err != nil {
								b.Fatal(err)
							}
							if (k/chunk)%5 == 4 {
								if _, err := d.Partial(); err != nil {
									b.Fatal(err)
								}
							}
						}
						endStart := time.Now()
						hyp, err := d.End()
						if err != nil {
							b.Fatal(err)
						}
						endTime += time.Since(endStart)
						endMax = max(endMax, time.Since(endStart))
						decodeTime += time.Since(start)
						ends++
						audioSec += float64(len(pcm)) / sphinx.SampleRate
						scores[i].add(sentences[j], hyp)
						if os.Getenv("SPHINX_BENCH_VERBOSE") != "" {
							b.Logf("%s %-32q -> %q", v.name, sentences[j], hyp)
						}
					}
					d.Close()
				}
			}
			for i, v := range voices {
				b.ReportMetric(scores[i].wer(), "wer_"+v.name+"_%")
			}
			b.ReportMetric(audioSec/decodeTime.Seconds(), "x_realtime")
			b.ReportMetric(float64(endTime.Milliseconds())/float64(ends), "end_ms")
			b.ReportMetric(float64(endMax.Milliseconds()), "end_max_ms")
		})
	}
}

// BenchmarkLoad is the time a new default-model decoder takes to load.
func BenchmarkLoad(b *testing.B) {
	requireSphinx(b)
	n := 0
	for b.Loop() {
		d, err := sphinx.New(sphinx.Config{})
		if err != nil {
			b.Fatal(err)
		}
		n++
		d.Close()
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(n), "load_ms")
}

// BenchmarkMemory is the resident memory a default-model decoder holds
// once it has decoded a sentence (rss_MB, each of three alive at once),
// and what stays after all are closed (rss_kept_MB). Linux only: it reads
// /proc/self/status.
func BenchmarkMemory(b *testing.B) {
	requireSphinx(b)
	if vmRSS() == 0 {
		b.Fatal("no /proc/self/status to read the resident memory from")
	}
	pcm := utterance(espeakVoice(b).speak(b, "what is the weather like today"))
	const n = 3
	var held, kept float64
	runs := 0
	for b.Loop() {
		before := vmRSS()
		var ds []*sphinx.Decoder
		for range n {
			d, err := sphinx.New(sphinx.Config{})
			if err != nil {
				b.Fatal(err)
			}
			recognize(b, d, pcm)
			ds = append(ds, d)
		}
		held += (vmRSS() - before) / n
		for _, d := range ds {
			d.Close()
		}
		kept += vmRSS() - before
		runs++
	}
	b.ReportMetric(held/float64(runs), "rss_MB")
	b.ReportMetric(kept/float64(runs), "rss_kept_MB")
}

// BenchmarkPoolGet is a Get and Put of a warm pool's decoder: what an STT
// socket waits instead of BenchmarkLoad.
func BenchmarkPoolGet(b *testing.B) {
	requireSphinx(b)
	p := sphinx.NewPool(sphinx.Config{}, 1)
	defer p.Close()
	if err := p.Warm(b.Context()); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d, err := p.Get(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		p.Put(d)
	}
}

// vmRSS is the process's resident memory in MB, 0 when unknown.
func vmRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
