package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Ctrl+C during a slow close: the first lets the fallback clip finish,
// the second exits at once. The close here is the LLM's credits running
// out; its clip plays for almost 4 s on --output's real-time clock.
func TestInterruptDuringClose(t *testing.T) {
	input := spokenWAV(t, 500*time.Millisecond, "What time is it?", 3*time.Second)
	script := filepath.Join(t.TempDir(), "script.txt")
	os.WriteFile(script, []byte("what time is it\n"), 0o644)

	// start runs the binary until its terminal error event, then sends
	// the signals, and returns the events, stderr and exit status.
	start := func(t *testing.T, interrupts int) ([]event, string, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "--headless", "--input", input, "--output", filepath.Join(t.TempDir(), "out.wav"),
			"--stt-script", script, "--quota", "llm:credits")
		cmd.Env = append(os.Environ(), noCredentials...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var events []event
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e event
			json.Unmarshal(sc.Bytes(), &e)
			events = append(events, e)
			if e.typ() == "error" && e["terminal"] == true {
				break
			}
		}
		for i := range interrupts {
			if i > 0 {
				time.Sleep(300 * time.Millisecond) // the clip is playing
			}
			cmd.Process.Signal(syscall.SIGINT)
		}
		for sc.Scan() {
			var e event
			json.Unmarshal(sc.Bytes(), &e)
			events = append(events, e)
		}
		cmd.Wait()
		return events, stderr.String(), cmd.ProcessState.ExitCode()
	}
	of := func(events []event, typ string) []event {
		var out []event
		for _, e := range events {
			if e.typ() == typ {
				out = append(out, e)
			}
		}
		return out
	}

	t.Run("once", func(t *testing.T) {
		events, stderr, code := start(t, 1)
		fb := of(events, "fallback")
		if len(fb) != 1 || fb[0]["clip"] != "quota" || fb[0]["ok"] != true {
			t.Fatalf("the clip did not play to its end: %v\n%s", fb, stderr)
		}
		if c := of(events, "close"); len(c) != 1 || c[0]["reason"] != "error" || code != exitQuota {
			t.Fatalf("close %v, exit %d\n%s", c, code, stderr)
		}
	})
	t.Run("twice", func(t *testing.T) {
		events, stderr, code := start(t, 2)
		if code != exitForced || !strings.Contains(stderr, "interrupted again") {
			t.Fatalf("exit %d\n%s", code, stderr)
		}
		// Forced before the clip ended: nothing after the error was said.
		if fb, c := of(events, "fallback"), of(events, "close"); len(fb) != 0 || len(c) != 0 {
			t.Fatalf("the exit waited for the clip: fallback %v, close %v", fb, c)
		}
	})
}
