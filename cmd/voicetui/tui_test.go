package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/pipelinetest/tmuxtest"
)

// tmuxSession runs the real binary in a private tmux server, in a real
// terminal of the given size, on the headless audio devices.
type tmuxSession struct{ *tmuxtest.Session }

func startTmux(t testing.TB, cols, rows int, args ...string) *tmuxSession {
	t.Helper()
	return startTmuxEnv(t, cols, rows, nil, args...)
}

// startTmuxEnv is startTmux with env added to the binary's environment.
func startTmuxEnv(t testing.TB, cols, rows int, env []string, args ...string) *tmuxSession {
	t.Helper()
	return startTmuxBin(t, binary, cols, rows, env, args...)
}

// startTmuxBin is startTmuxEnv with another build of the binary.
func startTmuxBin(t testing.TB, bin string, cols, rows int, env []string, args ...string) *tmuxSession {
	t.Helper()
	return &tmuxSession{Session: tmuxtest.Start(t, bin, cols, rows, append(append([]string{}, noCredentials...), env...), args...)}
}

func itoa(n int) string { return strconv.Itoa(n) }

func (s *tmuxSession) screen() string   { return s.Screen() }
func (s *tmuxSession) keys(k ...string) { s.Keys(k...) }

// waitScreen waits until the screen shows every one of want.
func (s *tmuxSession) waitScreen(limit time.Duration, want ...string) string {
	return s.WaitScreen(limit, want...)
}

func TestInterfaceInTmux(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script.txt")
	// The transcript carries escape sequences, as a hostile gateway's
	// might: a window-title change and a screen clear.
	os.WriteFile(script, []byte("\x1b]0;pwned\x07what time is it\x1b[2J\n"), 0o644)
	s := startTmux(t, 100, 30, "--stt-script", script, "--log-file", filepath.Join(dir, "log.txt"))
	s.waitScreen(20*time.Second, "voicetui", "embedded gateway", "agent listening", "AEC on", "all good")

	// Exhaust LLM credits through the embedded gateway's control endpoint.
	s.keys("x")
	s.waitScreen(5*time.Second, "credits exhausted for llm")

	rec := speakIntoMic(t, t.Context(), "What time is it?")
	scr := s.waitScreen(15*time.Second, "TERMINAL", "MaxGatewayCredits", "You're out of credits", "fallback clip quota played", "session closed (error)")
	// Had the sequences reached the terminal, tmux would have renamed the
	// pane and cleared the screen.
	if title := s.Display("#{pane_title}"); strings.Contains(title, "pwned") {
		t.Fatalf("a transcript's escape sequence reached the terminal: pane title %q", title)
	}
	if !strings.Contains(scr, "you:   what time is it") {
		t.Fatalf("the transcript is missing:\n%s", scr)
	}
	if _, ok := rec.FirstSound(); !ok {
		t.Fatal("the fallback clip never reached the virtual speaker")
	}
	pcm, _ := rec.Stop()
	loud := 0 // 20 ms windows with sound
	for i := 0; i+960 <= len(pcm); i += 960 {
		if audio.RMS(pcm[i:i+960]) > -45 {
			loud++
		}
	}
	if loud < 100 {
		t.Fatalf("%.1f s of sound at the speaker: want the 4 s clip", float64(loud)*0.02)
	}
	// The explanation stays until the user quits.
	time.Sleep(500 * time.Millisecond)
	s.waitScreen(time.Second, "You're out of credits")
	s.keys("q")
	s.waitScreen(10*time.Second, "EXITED 3") // a session closed by credits: exit 3
}

// Under the interface q is a key, not a signal: it quits the interface
// and lets the fallback clip finish; a Ctrl+C after it (a signal, the
// terminal is no longer raw) forces the exit.
func TestInterfaceQuitThenCtrlCForcesTheExit(t *testing.T) {
	s := startTmux(t, 100, 30, "--quota", "llm:credits", "--log-file", filepath.Join(t.TempDir(), "log.txt"))
	s.waitScreen(20*time.Second, "agent listening")
	s.keys("C-t")
	s.keys("-l", "what time is it")
	s.keys("Enter")
	s.waitScreen(15*time.Second, "You're out of credits") // said before the 4 s clip plays
	s.keys("Escape")                                      // the prompt stays open after a message: esc closes it
	time.Sleep(200 * time.Millisecond)                    // esc and q at once are alt+q
	s.keys("q")
	time.Sleep(300 * time.Millisecond)
	s.keys("C-c")
	s.waitScreen(5*time.Second, "interrupted again", "EXITED 130")
}
