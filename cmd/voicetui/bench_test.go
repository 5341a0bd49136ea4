package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procTimes reads a process's CPU time (user+system) and peak RSS.
func procTimes(b *testing.B, pid int) (cpu time.Duration, peakKB int) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	cpu = time.Duration(utime+stime) * time.Second / 100 // USER_HZ
	status, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			peakKB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	return cpu, peakKB
}

// BenchmarkInterfaceIdle runs the real binary with its interface in tmux
// on the headless devices and the embedded gateway: the time from start
// to "listening" on the screen, then CPU (% of one core) and peak RSS
// over 30 s of idle listening.
func BenchmarkInterfaceIdle(b *testing.B) {
	// The embedded gateway's STT engine is most of the memory: pocketsphinx
	// (the default where installed) keeps its model loaded.
	for _, engine := range []string{"pocketsphinx", "energy"} {
		b.Run(engine, func(b *testing.B) { interfaceIdle(b, "--stt-engine", engine) })
	}
}

func interfaceIdle(b *testing.B, args ...string) {
	for b.Loop() {
		start := time.Now()
		s := startTmux(b, 100, 30, args...)
		s.waitScreen(20*time.Second, "agent listening")
		toListening := time.Since(start)
		out, err := exec.Command("tmux", "-S", s.sock, "display", "-p", "-t", "vt", "#{pane_pid}").Output()
		if err != nil {
			b.Fatal(err)
		}
		shell := strings.TrimSpace(string(out))
		kids, err := exec.Command("pgrep", "-P", shell).Output()
		if err != nil {
			b.Fatalf("no voicetui under the pane's shell %s", shell)
		}
		pid, _ := strconv.Atoi(strings.Fields(string(kids))[0])
		cpu0, _ := procTimes(b, pid)
		const idle = 30 * time.Second
		time.Sleep(idle)
		cpu1, peak := procTimes(b, pid)
		s.keys("q")
		b.ReportMetric(float64(toListening.Milliseconds()), "ms_to_listening")
		b.ReportMetric(100*float64(cpu1-cpu0)/float64(idle), "%cpu_idle")
		b.ReportMetric(float64(peak)/1024, "MiB_peak_rss")
	}
}
