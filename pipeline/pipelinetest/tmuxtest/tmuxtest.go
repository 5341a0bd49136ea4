// Package tmuxtest drives a real program in a real terminal: a private
// tmux server runs it in a pane of a given size, tests type keys into it
// and read the screen back (capture-pane), as a user would see it. The
// interface's tests use it on the binary itself, in local and room mode.
package tmuxtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// Session is one program in one tmux pane.
type Session struct {
	t    testing.TB
	sock string
}

// Start runs bin with args in a cols x rows pane, with env added to this
// process's environment (TERM is xterm-256color). When the program exits
// the pane prints "EXITED <status>" and stays for 30 s. The tmux server
// is killed at the end of the test.
func Start(t testing.TB, bin string, cols, rows int, env []string, args ...string) *Session {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: the interface's tests need it (make setup installs it)")
	}
	s := &Session{t: t, sock: filepath.Join(t.TempDir(), "tmux.sock")}
	cmdline := quote(bin)
	for _, a := range args {
		cmdline += " " + quote(a)
	}
	cmd := exec.Command("tmux", "-S", s.sock, "new-session", "-d", "-s", "vt", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows),
		cmdline+"; echo EXITED $?; sleep 30")
	cmd.Env = append(os.Environ(), append([]string{"TERM=xterm-256color"}, env...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tmux: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("tmux", "-S", s.sock, "kill-server").Run() })
	return s
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Screen is the pane as shown, with the lines the terminal wrapped joined
// again (-J): a long exit message is one line.
func (s *Session) Screen() string {
	out, _ := exec.Command("tmux", "-S", s.sock, "capture-pane", "-p", "-J", "-t", "vt").CombinedOutput()
	return string(out)
}

// Rows is the pane as shown, row by row, nothing joined.
func (s *Session) Rows() []string {
	out, _ := exec.Command("tmux", "-S", s.sock, "capture-pane", "-p", "-t", "vt").CombinedOutput()
	return strings.Split(strings.TrimRight(string(out), "\n"), "\n")
}

// Keys sends tmux key names (Enter, Escape, C-t, F1) or, after "-l",
// literal text.
func (s *Session) Keys(k ...string) {
	exec.Command("tmux", append([]string{"-S", s.sock, "send-keys", "-t", "vt"}, k...)...).Run()
}

// Type sends text as typed, literally.
func (s *Session) Type(text string) { s.Keys("-l", text) }

// Resize makes the pane cols x rows, as a user resizing the window.
func (s *Session) Resize(cols, rows int) {
	s.t.Helper()
	if out, err := exec.Command("tmux", "-S", s.sock, "resize-window", "-t", "vt", "-x", strconv.Itoa(cols), "-y", strconv.Itoa(rows)).CombinedOutput(); err != nil {
		s.t.Fatalf("tmux resize-window: %v: %s", err, out)
	}
}

// Display is a tmux format of the pane, e.g. "#{alternate_on}".
func (s *Session) Display(format string) string {
	out, _ := exec.Command("tmux", "-S", s.sock, "display", "-p", "-t", "vt", format).Output()
	return strings.TrimSpace(string(out))
}

// WaitScreen waits until the screen shows every one of want, and returns
// it; it fails the test with the screen after limit.
func (s *Session) WaitScreen(limit time.Duration, want ...string) string {
	s.t.Helper()
	return s.wait(limit, want, func(scr, w string) bool { return strings.Contains(scr, w) })
}

// WaitText is WaitScreen for text however the interface wrapped it: the
// screen and want are compared without white space and box borders.
func (s *Session) WaitText(limit time.Duration, want ...string) string {
	s.t.Helper()
	return s.wait(limit, want, func(scr, w string) bool { return strings.Contains(Squeeze(scr), Squeeze(w)) })
}

func (s *Session) wait(limit time.Duration, want []string, shows func(scr, w string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		scr := s.Screen()
		ok := true
		for _, w := range want {
			ok = ok && shows(scr, w)
		}
		if ok {
			return scr
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the screen never showed %q:\n%s", want, scr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Squeeze is s without white space and the status pane's side borders.
func Squeeze(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || r == '│' {
			return -1
		}
		return r
	}, s)
}
