package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

// procStats is what a process has used so far, summed over its threads:
// CPU time (the scheduler's accounting of each thread, in nanoseconds:
// the clock-tick figures of /proc/PID/stat are too coarse for a process
// that idles), context switches (a steadier figure than CPU on a noisy
// machine: each is a wake), and its peak RSS.
type procStats struct {
	cpu      time.Duration
	switches int64
	peakKB   int
}

// procTimes reads procStats for pid.
func procTimes(b *testing.B, pid int) procStats {
	var st procStats
	dir := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range tasks {
		stat, err := os.ReadFile(dir + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue // a thread that just ended
		}
		ns, _ := strconv.ParseInt(strings.Fields(string(stat))[0], 10, 64)
		st.cpu += time.Duration(ns)
		status, _ := os.ReadFile(dir + "/task/" + t.Name() + "/status")
		for _, l := range strings.Split(string(status), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && (k == "voluntary_ctxt_switches" || k == "nonvoluntary_ctxt_switches") {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				st.switches += n
			}
		}
	}
	status, _ := os.ReadFile(dir + "/status")
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			st.peakKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return st
}

// BenchmarkInterfaceIdle runs the real binary with its interface in tmux
// on the headless devices and the embedded gateway: the time from start
// to "listening" on the screen, then CPU (% of one core), context
// switches a second and peak RSS over 30 s of idle listening, from 3 s
// after it.
func BenchmarkInterfaceIdle(b *testing.B) {
	// The embedded gateway's STT engine is most of the memory: pocketsphinx
	// (the default where installed) keeps its model loaded.
	for _, engine := range []string{"pocketsphinx", "energy"} {
		b.Run(engine, func(b *testing.B) { interfaceIdle(b, "--stt-engine", engine) })
	}
	b.Run("sox_floor", soxFloor)
}

// soxFloor is what capturing the same default device at the pipeline's
// rate costs sox, through the same ALSA -> PulseAudio path, over the same
// 30 s: the floor the idle figure is compared with.
func soxFloor(b *testing.B) {
	for b.Loop() {
		cmd := exec.Command("sox", "-q", "-t", "alsa", "-r", "16000", "-c", "1", "default", "-t", "raw", "-r", "16000", "-c", "1", "-b", "16", "-e", "signed", os.DevNull)
		if err := cmd.Start(); err != nil {
			b.Fatalf("sox: %v (make setup installs it)", err)
		}
		time.Sleep(2 * time.Second) // started and capturing
		st0 := procTimes(b, cmd.Process.Pid)
		const idle = 30 * time.Second
		time.Sleep(idle)
		st1 := procTimes(b, cmd.Process.Pid)
		b.Logf("sox pid %d cpu %v -> %v", cmd.Process.Pid, st0.cpu, st1.cpu)
		cmd.Process.Kill()
		cmd.Wait()
		b.ReportMetric(100*float64(st1.cpu-st0.cpu)/float64(idle), "%cpu_idle")
		b.ReportMetric(float64(st1.switches-st0.switches)/idle.Seconds(), "switches/s")
	}
}

func interfaceIdle(b *testing.B, args ...string) {
	for b.Loop() {
		start := time.Now()
		s := startTmuxEnv(b, 100, 30, strings.Fields(os.Getenv("IDLE_ENV")), args...)
		s.waitScreen(20*time.Second, "agent listening")
		toListening := time.Since(start)
		shell := s.Display("#{pane_pid}")
		kids, err := exec.Command("pgrep", "-P", shell).Output()
		if err != nil {
			b.Fatalf("no voicetui under the pane's shell %s", shell)
		}
		pid, _ := strconv.Atoi(strings.Fields(string(kids))[0])
		time.Sleep(3 * time.Second) // settled: the recognizer's model is loaded (in the background)
		st0 := procTimes(b, pid)
		const idle = 30 * time.Second
		time.Sleep(idle)
		st1 := procTimes(b, pid)
		s.keys("q")
		b.ReportMetric(float64(toListening.Milliseconds()), "ms_to_listening")
		b.ReportMetric(100*float64(st1.cpu-st0.cpu)/float64(idle), "%cpu_idle")
		b.ReportMetric(float64(st1.switches-st0.switches)/idle.Seconds(), "switches/s")
		b.ReportMetric(float64(st1.peakKB)/1024, "MiB_peak_rss")
	}
}

// BenchmarkBinarySize is the size of the binary: as the tests build it
// (go build: symbols and debug information kept) and as make dist does
// (-trimpath, stripped), in MB.
func BenchmarkBinarySize(b *testing.B) {
	for b.Loop() {
		dist := filepath.Join(b.TempDir(), "voicetui")
		build := exec.Command("go", "build", "-tags", pipelinetest.BuildTags(), "-trimpath", "-ldflags", "-s -w", "-o", dist, ".")
		if out, err := build.CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		for _, c := range []struct{ path, unit string }{{binary, "MB_build"}, {dist, "MB_dist"}} {
			fi, err := os.Stat(c.path)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size())/1e6, c.unit)
		}
	}
}
