package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/pipeline/pipelinetest"
)

var (
	crashBinaryOnce sync.Once
	crashBinary     string
	crashBinaryErr  error
)

// crashBuild is the binary built with -tags crashtest: F12 makes its
// interface panic (crash_inject.go).
func crashBuild(t *testing.T) string {
	t.Helper()
	crashBinaryOnce.Do(func() {
		crashBinary = filepath.Join(filepath.Dir(binary), "voicetui-crashtest")
		out, err := exec.Command("go", "build", "-tags", strings.Trim(pipelinetest.BuildTags()+",crashtest", ","), "-o", crashBinary, ".").CombinedOutput()
		if err != nil {
			crashBinaryErr = err
			t.Logf("%s", out)
		}
	})
	if crashBinaryErr != nil {
		t.Fatalf("go build -tags crashtest: %v", crashBinaryErr)
	}
	return crashBinary
}

// A panic in the interface loses nothing: the terminal is restored, the
// session closed, --record's files and events written to the end, and the
// panic's text is in a file the exit message names.
func TestInterfaceCrashKeepsTheRecording(t *testing.T) {
	dir := t.TempDir()
	rec := filepath.Join(dir, "rec")
	script := filepath.Join(dir, "script.txt")
	os.WriteFile(script, []byte("what time is it\n"), 0o644)
	s := startTmuxBin(t, crashBuild(t), 220, 40, nil, "--stt-script", script, "--record", rec, "--log-file", filepath.Join(dir, "log.txt"))
	s.waitScreen(20*time.Second, "agent listening")
	speakIntoMic(t, t.Context(), "What time is it?")
	s.waitScreen(20*time.Second, "agent: It is")
	s.waitScreen(20*time.Second, "agent listening")
	s.keys("F12")
	scr := s.waitScreen(20*time.Second, "EXITED 1")
	if alt := s.Display("#{alternate_on}"); alt != "0" {
		t.Fatalf("the terminal is still in the interface's screen (alternate_on %q):\n%s", alt, scr)
	}
	m := regexp.MustCompile(`voicetui: the interface crashed: injected panic .*details in (\S+) \(please report it\)`).FindStringSubmatch(strings.Join(strings.Fields(scr), " "))
	if m == nil {
		t.Fatalf("no crash message naming its report:\n%s", scr)
	}
	if filepath.Dir(m[1]) != rec {
		t.Errorf("the report %s is not in the --record directory %s", m[1], rec)
	}
	report, err := os.ReadFile(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(report), "panic: injected panic") || !strings.Contains(string(report), "goroutine") {
		t.Fatalf("the report lacks the panic and its stack:\n%s", report)
	}
	if st, _ := os.Stat(m[1]); st.Mode().Perm() != 0o600 {
		t.Errorf("the report is %v, want 0600", st.Mode().Perm())
	}
	// The events to the close, the conversation in them.
	var types []string
	said, answered := false, false
	for _, e := range readEvents(t, filepath.Join(rec, "events.jsonl")) {
		types = append(types, e.typ())
		said = said || e.typ() == "transcript" && e["text"] == "what time is it"
		answered = answered || e.typ() == "agent_text" && e["final"] == true
	}
	if types[len(types)-1] != "close" || !said || !answered {
		t.Fatalf("events.jsonl holds %v (said %v, answered %v)", types, said, answered)
	}
	// The recordings are whole WAVs: the reply is in speaker.wav, the
	// question in mic.wav.
	for name, min := range map[string]int{"mic.wav": 20, "speaker.wav": 20} {
		pcm, _, err := audio.ReadWAVFile(filepath.Join(rec, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		loud := 0
		for i := 0; i+320 <= len(pcm); i += 320 {
			if audio.RMS(pcm[i:i+320]) > -40 {
				loud++
			}
		}
		if loud < min {
			t.Errorf("%s has %d loud 20 ms periods", name, loud)
		}
	}
}
