package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/fallback"
)

// The QA matrix end to end on its fastest classes (and the finalize
// watchdog, whose earcon a close once cut): the command exits 0, and its
// report holds what it claims: the files, the verdicts, and in each
// speaker timeline the expected clip, sample for sample.
func TestQAReportOnASubset(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report")
	r := voicetuiFor(t, 90*time.Second, noCredentials, "qa", "--out", out, "--only", "happy,llm_credits,unauthorized,finalize_never")
	if r.code != 0 || !strings.Contains(r.stdout, "all 4 classes behave as documented") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "qa: 4/4 done") {
		t.Errorf("no progress line: %s", r.stderr)
	}
	index, err := os.ReadFile(filepath.Join(out, "index.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(index), "# voicetui QA: PASS (4 of 4 classes as documented)") {
		t.Fatalf("index.md:\n%s", index)
	}
	for class, clip := range map[string]fallback.Clip{"happy": "", "llm_credits": fallback.Quota, "unauthorized": fallback.Unavailable, "finalize_never": fallback.EarconFailed} {
		dir := filepath.Join(out, class)
		row := ""
		for _, line := range strings.Split(string(index), "\n") {
			if strings.Contains(line, "]("+class+"/)") {
				row = line
			}
		}
		if !strings.Contains(row, "| pass |") {
			t.Errorf("%s: row %q", class, row)
		}
		for _, f := range []string{"events.jsonl", "speaker.wav", "status.txt"} {
			if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s: %v %v", class, f, err, st)
			}
		}
		pcm, format, err := audio.ReadWAVFile(filepath.Join(dir, "speaker.wav"))
		if err != nil || format.SampleRate != audio.PipelineRate {
			t.Fatalf("%s: speaker.wav %v %v", class, format, err)
		}
		heard := sessionRun{out: pcm}
		for _, c := range []fallback.Clip{fallback.Quota, fallback.Unavailable, fallback.EarconFailed} {
			_, found := heard.clipAt(t, bundled(t, c))
			if found != (c == clip) {
				t.Errorf("%s: clip %s in speaker.wav: %v, want %v", class, c, found, c == clip)
			}
		}
		if clip != "" && !strings.Contains(row, " ms |") {
			t.Errorf("%s: no failure -> first sound time: %q", class, row)
		}
	}
	status, _ := os.ReadFile(filepath.Join(out, "llm_credits", "status.txt"))
	for _, want := range []string{"At the failure", "LLM error · TERMINAL · HTTP 429", "You're out of credits", "session closed (error)"} {
		if !strings.Contains(string(status), want) {
			t.Errorf("llm_credits/status.txt lacks %q:\n%s", want, status)
		}
	}
}

// Against a standalone gateway (`voicetui gateway`) through its control
// endpoint: the same verdicts. A gateway whose secret the client does not
// have fails every class that expects to be let in, and the command
// says so with exit 1 and a report that shows why.
func TestQAAgainstAStandaloneGateway(t *testing.T) {
	start := func(secret string) string {
		addr := freeAddr(t)
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		cmd := exec.CommandContext(ctx, binary, "gateway", "--addr", addr, "--secret", secret, "--control-token", "qa-control", "--stt-engine", "energy")
		stderr, _ := cmd.StderrPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		lines := bufio.NewScanner(stderr)
		if !lines.Scan() {
			t.Fatal("the gateway said nothing")
		}
		go io.Copy(io.Discard, stderr)
		return "http://" + addr + "/v1"
	}
	good := start("secret") // voicetui gateway's default, which qa assumes without LIVEKIT_API_*
	out := filepath.Join(t.TempDir(), "good")
	r := voicetuiFor(t, 60*time.Second, noCredentials, "qa", "--gateway", good, "--control-token", "qa-control", "--out", out, "--only", "happy,llm_credits")
	if r.code != 0 {
		index, _ := os.ReadFile(filepath.Join(out, "index.md"))
		t.Fatalf("exit %d: %s\n%s", r.code, r.stderr, index)
	}

	wrong := start("another-secret")
	out = filepath.Join(t.TempDir(), "wrong")
	r = voicetuiFor(t, 60*time.Second, noCredentials, "qa", "--gateway", wrong, "--control-token", "qa-control", "--out", out, "--only", "happy,unauthorized")
	index, _ := os.ReadFile(filepath.Join(out, "index.md"))
	if r.code != 1 || !strings.Contains(r.stderr, "1 of 2 classes did not behave as documented") {
		t.Fatalf("exit %d, stderr %s\n%s", r.code, r.stderr, index)
	}
	for _, want := range []string{"# voicetui QA: FAIL (1 of 2", "| happy path | the reply plays; no error, no clip | **FAIL** |", "## happy path (happy): FAIL", "HTTP 401"} {
		if !strings.Contains(string(index), want) {
			t.Errorf("index.md lacks %q:\n%s", want, index)
		}
	}
}

func TestQAUsageErrors(t *testing.T) {
	r := voicetui(t, noCredentials, "qa", "--only", "happy,no_such_class")
	if r.code != 2 || !strings.Contains(r.stderr, `no QA class "no_such_class"`) || !strings.Contains(r.stderr, "llm_credits") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	r = voicetui(t, noCredentials, "qa", "--gateway", "http://127.0.0.1:1/v1")
	if r.code != 2 || !strings.Contains(r.stderr, "--control-token") {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
}

// The guided demo on the headless devices, in a real terminal: each
// step's caption appears, a key goes on, q ends it.
func TestDemoInTmux(t *testing.T) {
	s := startTmux(t, 100, 50, "demo")
	s.waitScreen(20*time.Second, "[step 1/5] A normal exchange", "agent: Hello!", "Press a key for the next step")
	s.keys("n")
	s.waitScreen(20*time.Second, "[step 2/5] A brief rate limit", "then the reply came")
	s.keys("n")
	scr := s.waitScreen(20*time.Second, "[step 3/5] Now the LLM credits run out", "fallback: quota clip (quota_exhausted), played: true", "LLM error · TERMINAL · HTTP 429")
	if strings.Contains(scr, "q quits · f replays") {
		t.Errorf("the demo shows the interface's keys:\n%s", scr)
	}
	s.keys("q")
	s.waitScreen(10*time.Second, "EXITED 0")
}
