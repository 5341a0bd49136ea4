package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
)

// spokenTurns is what BenchmarkPeakRSS says, one sentence a turn: the
// demo agent's own words and general ones it repeats back.
var spokenTurns = []string{
	"What time is it?",
	"Hello there.",
	"Can you help me?",
	"Thank you very much.",
	"What is the weather like today?",
	"Set a timer for five minutes.",
	"Play some music.",
	"Remind me to buy milk.",
	"Open the front door.",
	"Goodbye, see you later.",
}

// BenchmarkPeakRSS is the memory of a spoken conversation: the real
// binary as `make run` starts it (the embedded gateway, its default STT
// engine: pocketsphinx where installed), on the headless devices, hears
// ten spoken turns, each after the reply to the last has played. Metrics:
// peak-MB, the binary's peak resident memory (VmHWM, read from its own
// /proc entry until it exits), which counts the pages of the binary and
// its libraries the kernel has mapped (page-cache dependent: some 35 to
// 50 MB); peak-anon-MB, the largest anonymous part sampled every 10 ms
// (the heaps, Go's and the C libraries', pocketsphinx's decoder among
// them); first-final-ms, the end of the first turn's
// speech at the microphone -> its final transcript event (a recogniser
// loaded on demand waits there); final-ms, the median of the other turns.
//
// The energy sub-benchmark is the floor: the same conversation with
// --stt-engine energy, which recognises no words.
func BenchmarkPeakRSS(b *testing.B) {
	for _, c := range []struct {
		name string
		args []string
	}{
		{"default", nil},
		{"energy", []string{"--stt-engine", "energy"}},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				peak, anon, finals := spokenConversation(b, c.args...)
				rest := slices.Clone(finals[1:])
				slices.Sort(rest)
				b.Logf("peak RSS %.1f MB (anonymous %.1f MB); final transcript after the end of speech: first %.0f ms, then %v ms", peak, anon, finals[0], finals[1:])
				b.ReportMetric(peak, "peak-MB")
				b.ReportMetric(anon, "peak-anon-MB")
				b.ReportMetric(finals[0], "first-final-ms")
				b.ReportMetric(rest[len(rest)/2], "final-ms")
			}
		})
	}
}

// spokenConversation runs the binary through the conversation and returns
// its peak RSS in MB and, per turn, the time from the end of the speech
// at the microphone to the final transcript, in ms.
func spokenConversation(b *testing.B, args ...string) (peakMB, anonMB float64, finalMs []float64) {
	run := startMeasured(b, 5*time.Minute, noCredentials, append([]string{"--headless"}, args...)...)
	pid := run.cmd.Process.Pid
	// The anonymous part (heaps, Go's and the C libraries') has no peak of
	// its own in /proc: sample it.
	var anonKB atomic.Int64
	sampled := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if kb := int64(procStatusKB(pid, "RssAnon:")); kb > anonKB.Load() {
				anonKB.Store(kb)
			}
			select {
			case <-stopSampling:
				return
			case <-t.C:
			}
		}
	}()
	stopSampler := sync.OnceFunc(func() { close(stopSampling); <-sampled })
	defer stopSampler()
	run.waitFor(b, func(e event) bool { return e["agent"] == "listening" })
	var heard []string
	for turn, sentence := range spokenTurns {
		speech, _, err := audio.ReadWAVFile(spokenWAV(b, 300*time.Millisecond, sentence, 700*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		mic, err := server.Record("mic", 2000)
		if err != nil {
			b.Fatal(err)
		}
		if err := server.FeedMic(context.Background(), speech); err != nil {
			b.Fatal(err)
		}
		e := run.waitFor(b, func(e event) bool { return e.typ() == "transcript" && e["final"] == true })
		final := time.Now()
		heard = append(heard, fmt.Sprintf("%q", e["text"]))
		// The reply has played and the agent listens again.
		run.waitFor(b, func(e event) bool { m, _ := e["turn"].(float64); return e.typ() == "metrics" && int(m) == turn+1 })
		end := lastSound(b, mic)
		finalMs = append(finalMs, float64(final.Sub(end).Microseconds())/1000)
		time.Sleep(500 * time.Millisecond)
	}
	b.Logf("heard: %s", strings.Join(heard, ", "))
	peakKB := vmHWM(pid)
	run.cmd.Process.Signal(os.Interrupt)
	exited := make(chan struct{})
	go func() { run.cmd.Wait(); close(exited) }()
	// VmHWM only grows: its last reading before the process is gone (or a
	// zombie, without memory) is the peak of the whole run, exit included.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(10 * time.Second)
	for {
		if kb := vmHWM(pid); kb > peakKB {
			peakKB = kb
		}
		select {
		case <-exited:
			stopSampler()
			return float64(peakKB) / 1024, float64(anonKB.Load()) / 1024, finalMs
		case <-tick.C:
		case <-limit:
			run.cmd.Process.Kill()
			<-exited
			b.Fatal("voicetui did not exit within 10 s of an interrupt")
		}
	}
}

// vmHWM is a process's peak resident set in kB, from its own status (0
// once it is gone).
func vmHWM(pid int) int { return procStatusKB(pid, "VmHWM:") }

// procStatusKB is one kB field of a process's status (0 once it is gone).
func procStatusKB(pid int, field string) int {
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			kb, _ := strconv.Atoi(strings.Fields(v)[0])
			return kb
		}
	}
	return 0
}

// startMeasured is startBinary with a time limit of the caller's: the
// binary itself, no wrapper, so its pid is the one to measure.
func startMeasured(b *testing.B, limit time.Duration, env []string, args ...string) *binaryRun {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	b.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	r := &binaryRun{cmd: cmd, events: make(chan event, 1000), started: time.Now()}
	go func() {
		defer close(r.events)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				r.events <- e
			}
		}
	}()
	b.Cleanup(r.stop)
	return r
}
