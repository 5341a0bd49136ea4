package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voicetui/voicetui/audio"
	"github.com/voicetui/voicetui/audio/pulsetest"
	"github.com/voicetui/voicetui/fallback"
	"github.com/voicetui/voicetui/pipeline/localgw/speechtest"
)

// spokenWAV builds a 16 kHz WAV of real synthetic speech (espeak-ng)
// and silences: each part is a sentence or a time.Duration of silence.
func spokenWAV(t testing.TB, parts ...any) string { return speechtest.WAV(t, parts...) }

type event map[string]any

func (e event) typ() string { s, _ := e["type"].(string); return s }
func (e event) at() time.Duration {
	ms, _ := e["t_ms"].(float64)
	return time.Duration(ms) * time.Millisecond
}

type sessionRun struct {
	result
	events []event
	out    []int16 // --output, 16 kHz
}

// headless runs a whole session of the real binary on input, against
// the embedded gateway, with a script of transcripts.
func runHeadless(t *testing.T, input string, script []string, args ...string) sessionRun {
	t.Helper()
	dir := t.TempDir()
	out := filepath.Join(dir, "out.wav")
	scriptFile := filepath.Join(dir, "script.txt")
	os.WriteFile(scriptFile, []byte(strings.Join(script, "\n")), 0o644)
	all := append([]string{"--headless", "--input", input, "--output", out, "--stt-script", scriptFile}, args...)
	r := voicetuiFor(t, 60*time.Second, noCredentials, all...)
	var run sessionRun
	run.result = r
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line is not JSON: %q", sc.Text())
		}
		if _, ok := e["t_ms"].(float64); !ok {
			t.Fatalf("no t_ms: %q", sc.Text())
		}
		run.events = append(run.events, e)
	}
	pcm, f, err := audio.ReadWAVFile(out)
	if err != nil {
		t.Fatalf("--output: %v (stderr %s)", err, r.stderr)
	}
	if f.SampleRate != audio.PipelineRate {
		t.Fatalf("--output at %d Hz", f.SampleRate)
	}
	run.out = pcm
	if len(run.events) == 0 || run.events[len(run.events)-1].typ() != "close" {
		t.Fatalf("the last event is not close; exit %d, stderr %s\n%s", r.code, r.stderr, r.stdout)
	}
	return run
}

func (r sessionRun) of(typ string) []event {
	var out []event
	for _, e := range r.events {
		if e.typ() == typ {
			out = append(out, e)
		}
	}
	return out
}

func (r sessionRun) close() event { return r.events[len(r.events)-1] }

// level is the output's RMS between two instants.
func (r sessionRun) level(from, to time.Duration) float64 {
	a := min(len(r.out), int(from.Seconds()*audio.PipelineRate))
	b := min(len(r.out), int(to.Seconds()*audio.PipelineRate))
	if b <= a {
		return audio.Silence
	}
	return audio.RMS(r.out[a:b])
}

// clipAt finds clip's samples in the output: the clip is written to the
// speaker unchanged (16 kHz both), so its samples appear verbatim.
func (r sessionRun) clipAt(t *testing.T, clip []int16) (time.Duration, bool) {
	t.Helper()
	start := 0
	for start < len(clip) && math.Abs(float64(clip[start])) < 2000 {
		start++
	}
	needle := clip[start:min(start+400, len(clip))]
	for i := 0; i+len(needle) <= len(r.out); i++ {
		if r.out[i] == needle[0] && equalSamples(r.out[i:i+len(needle)], needle) {
			return time.Duration(i-start) * time.Second / audio.PipelineRate, true
		}
	}
	return 0, false
}

func equalSamples(a, b []int16) bool {
	for i := range b {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func bundled(t *testing.T, c fallback.Clip) []int16 {
	pcm, err := fallback.Samples(c, fallback.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

func TestSessionTwoTurns(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 4*time.Second, "Thank you, goodbye.", time.Second)
	r := runHeadless(t, in, []string{"what time is it", "thank you goodbye"})
	if r.code != 0 || r.close()["reason"] != "input_ended" || r.close()["error"] != nil {
		t.Fatalf("exit %d close %v\n%s", r.code, r.close(), r.stderr)
	}
	var finals []string
	for _, e := range r.of("transcript") {
		if e["final"] == true {
			finals = append(finals, e["text"].(string))
		}
	}
	if strings.Join(finals, "|") != "what time is it|thank you goodbye" {
		t.Fatalf("final transcripts %q", finals)
	}
	var replies []event
	for _, e := range r.of("agent_text") {
		if e["final"] == true {
			replies = append(replies, e)
		}
	}
	if len(replies) != 2 || !strings.HasPrefix(replies[0]["text"].(string), "It is ") || replies[1]["text"] != "Goodbye!" {
		t.Fatalf("replies %v", replies)
	}
	// Each reply is audible at the speaker after the agent starts speaking.
	var speaking []time.Duration
	for _, e := range r.of("state") {
		if e["agent"] == "speaking" {
			speaking = append(speaking, e.at())
		}
	}
	if len(speaking) != 2 {
		t.Fatalf("agent spoke %d times", len(speaking))
	}
	for i, at := range speaking {
		if l := r.level(at, at+600*time.Millisecond); l < -35 {
			t.Errorf("reply %d at %v: %.1f dBFS at the speaker", i+1, at, l)
		}
	}
	if m := r.of("metrics"); len(m) != 2 || m[0]["e2e_ms"].(float64) <= 0 {
		t.Errorf("metrics %v", m)
	}
	if r.of("error") != nil {
		t.Errorf("errors %v", r.of("error"))
	}
}

// terminalQuota checks the first error is terminal, nothing was retried,
// the quota clip reached the speaker after it, and the session closed.
func terminalQuota(t *testing.T, r sessionRun, stage string) {
	t.Helper()
	errs := r.of("error")
	if len(errs) != 1 {
		t.Fatalf("%d error events, want exactly one (no retry, no dead turn): %v", len(errs), errs)
	}
	e := errs[0]
	q, _ := e["quota"].(map[string]any)
	if e["terminal"] != true || e["retryable"] != false || e["stage"] != stage || e["status"] != 429.0 || e["attempt"] != 1.0 ||
		q == nil || q["category"] != "MaxGatewayCredits" || q["type"] != stage || q["hint"] == "" {
		t.Fatalf("error %v", e)
	}
	fb := r.of("fallback")
	if len(fb) != 1 || fb[0]["clip"] != "quota" || fb[0]["ok"] != true || fb[0]["reason"] != "quota_exhausted" {
		t.Fatalf("fallback %v", fb)
	}
	at, ok := r.clipAt(t, bundled(t, fallback.Quota))
	if !ok || at < e.at()-100*time.Millisecond {
		t.Fatalf("quota clip in the output: %v at %v (error at %v)", ok, at, e.at())
	}
	c := r.close()
	if c["reason"] != "error" || r.code != exitQuota {
		t.Fatalf("close %v, exit %d", c, r.code)
	}
	thinking := 0
	for _, s := range r.of("state") {
		if s["agent"] == "thinking" {
			thinking++
		}
	}
	if stage != "stt" && thinking != 1 {
		t.Fatalf("%d turns before the close; want the first to end it", thinking)
	}
}

func TestSessionLLMCreditsExhausted(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 3*time.Second, "Hello?", 2*time.Second)
	terminalQuota(t, runHeadless(t, in, []string{"what time is it", "hello"}, "--quota", "llm:credits"), "llm")
}

func TestSessionTTSCreditsExhausted(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 3*time.Second, "Hello?", 2*time.Second)
	terminalQuota(t, runHeadless(t, in, []string{"what time is it", "hello"}, "--quota", "tts:credits"), "tts")
}

func TestSessionSTTCreditsAtHandshake(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", time.Second)
	terminalQuota(t, runHeadless(t, in, []string{"what time is it"}, "--quota", "stt:credits"), "stt")
}

func TestSessionRateLimitBurstIsSurvived(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 5*time.Second, "Thank you, goodbye.", 2*time.Second)
	r := runHeadless(t, in, []string{"what time is it", "thank you goodbye"}, "--quota", "llm:rate:count=2")
	if r.code != 0 || r.close()["reason"] != "input_ended" {
		t.Fatalf("exit %d close %v", r.code, r.close())
	}
	errs := r.of("error")
	if len(errs) != 2 || errs[0]["attempt"] != 1.0 || errs[1]["attempt"] != 2.0 || errs[0]["retryable"] != true || errs[0]["terminal"] != false {
		t.Fatalf("errors %v", errs)
	}
	finals := 0
	for _, e := range r.of("agent_text") {
		if e["final"] == true {
			finals++
		}
	}
	if finals != 2 || r.of("fallback") != nil {
		t.Fatalf("%d replies, fallback %v", finals, r.of("fallback"))
	}
}

func TestSessionPersistentRateLimitCloses(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 6*time.Second, "Hello?", 6*time.Second, "Anyone?", 6*time.Second)
	r := runHeadless(t, in, []string{"what time is it", "hello", "anyone"}, "--quota", "llm:rate", "--max-unrecoverable-errors", "1")
	c := r.close()
	ce, _ := c["error"].(map[string]any)
	if c["reason"] != "error" || ce == nil || ce["terminal"] != false || r.code != exitError {
		t.Fatalf("close %v exit %d", c, r.code)
	}
	// Two turns, each tried four times: the second exceeds a tolerance of 1.
	if n := len(r.of("error")); n != 8 {
		t.Fatalf("%d error events, want 2 turns x 4 attempts", n)
	}
	// The first failed turn: the earcon, the session goes on; the second
	// closes it: the clip.
	fb := r.of("fallback")
	if len(fb) != 2 || fb[0]["clip"] != "earcon_failed" || fb[0]["reason"] != "turn_failed" || fb[0]["ok"] != true ||
		fb[1]["clip"] != "unavailable" || fb[1]["ok"] != true {
		t.Fatalf("fallback %v", fb)
	}
	if _, ok := r.clipAt(t, bundled(t, fallback.Unavailable)); !ok {
		t.Fatal("the generic clip is not in the output")
	}
	if _, ok := r.clipAt(t, bundled(t, fallback.EarconFailed)); !ok {
		t.Fatal("the earcon is not in the output")
	}
}

func TestSessionBargeIn(t *testing.T) {
	// "help" gets a long reply; the user talks over it.
	in := spokenWAV(t, time.Second, "Help me please.", 1500*time.Millisecond, "What time is it now?", 4*time.Second)
	r := runHeadless(t, in, []string{"help", "what time is it"})
	var spoke, interrupted time.Duration
	for _, e := range r.of("state") {
		if e["agent"] == "speaking" && spoke == 0 {
			spoke = e.at()
		}
		if spoke > 0 && interrupted == 0 && e["agent"] == "listening" && e["user"] == "speaking" {
			interrupted = e.at()
		}
	}
	if spoke == 0 || interrupted == 0 {
		t.Fatalf("no barge-in: %v", r.of("state"))
	}
	if l := r.level(spoke, spoke+500*time.Millisecond); l < -35 {
		t.Fatalf("the reply was not audible before the barge-in (%.1f dBFS)", l)
	}
	// The speaker falls silent at once (the flush), not after the reply.
	if l := r.level(interrupted+60*time.Millisecond, interrupted+400*time.Millisecond); l > -60 {
		t.Fatalf("the reply kept playing after the barge-in: %.1f dBFS", l)
	}
	finals := 0
	for _, e := range r.of("agent_text") {
		if e["final"] == true {
			finals++
		}
	}
	if finals < 2 {
		t.Fatalf("the second turn got no reply: %v", r.of("agent_text"))
	}
}

func TestSessionNoBargeIn(t *testing.T) {
	in := spokenWAV(t, time.Second, "Help me please.", 1500*time.Millisecond, "What time is it now?", 7*time.Second)
	r := runHeadless(t, in, []string{"help", "what time is it"}, "--no-barge-in")
	for _, e := range r.of("state") {
		if e["agent"] == "speaking" {
			for _, later := range r.of("state") {
				if later.at() > e.at() && later["user"] == "speaking" {
					t.Fatalf("user speech was taken while the agent had the floor: %v", later)
				}
			}
			break
		}
	}
}

func TestSessionFallbackOptions(t *testing.T) {
	in := spokenWAV(t, time.Second, "What time is it?", 2*time.Second)
	script := []string{"what time is it"}
	t.Run("no-error-audio", func(t *testing.T) {
		r := runHeadless(t, in, script, "--quota", "llm:credits", "--no-error-audio")
		fb := r.of("fallback")
		if len(fb) != 1 || fb[0]["ok"] != false || fb[0]["clip"] != nil || r.close()["reason"] != "error" {
			t.Fatalf("fallback %v", fb)
		}
		if l := r.level(r.of("error")[0].at(), time.Hour); l > -60 {
			t.Fatalf("sound after the error: %.1f dBFS", l)
		}
	})
	t.Run("error-audio", func(t *testing.T) {
		tone := make([]int16, audio.PipelineRate)
		for i := range tone {
			tone[i] = int16(8000 * math.Sin(float64(i)*2*math.Pi*440/audio.PipelineRate))
		}
		path := filepath.Join(t.TempDir(), "mine.wav")
		w, _ := audio.CreateWAV(path, audio.Pipeline)
		w.WriteSamples(tone)
		w.Close()
		r := runHeadless(t, in, script, "--quota", "llm:credits", "--error-audio", path)
		if _, ok := r.clipAt(t, tone); !ok {
			t.Fatal("the user's clip is not in the output")
		}
		if _, ok := r.clipAt(t, bundled(t, fallback.Quota)); ok {
			t.Fatal("the bundled clip played too")
		}
	})
	t.Run("error-message", func(t *testing.T) {
		r := runHeadless(t, in, script, "--quota", "llm:credits", "--error-message", "Sorry, I have to stop here.")
		fb := r.of("fallback")
		if len(fb) != 1 || fb[0]["text"] != "Sorry, I have to stop here." || fb[0]["ok"] != true {
			t.Fatalf("fallback %v", fb)
		}
		if l := r.level(r.of("error")[0].at(), time.Hour); l < -40 {
			t.Fatalf("the message is not audible: %.1f dBFS", l)
		}
		if _, ok := r.clipAt(t, bundled(t, fallback.Quota)); ok {
			t.Fatal("the clip played although TTS was healthy")
		}
	})
	t.Run("error-message with TTS exhausted", func(t *testing.T) {
		r := runHeadless(t, in, script, "--quota", "tts:credits", "--error-message", "Sorry, I have to stop here.")
		fb := r.of("fallback")
		if len(fb) != 1 || fb[0]["clip"] != "quota" || fb[0]["ok"] != true {
			t.Fatalf("fallback %v", fb)
		}
		if _, ok := r.clipAt(t, bundled(t, fallback.Quota)); !ok {
			t.Fatal("the quota clip is not in the output")
		}
	})
}

// The interactive path with real devices (the headless sound server): the
// user speaks into the virtual microphone, the reply plays on the virtual
// speaker, Ctrl+C ends the session, and --record keeps all of it.
func TestSessionOnDevicesWithRecord(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "script.txt")
	os.WriteFile(script, []byte("what time is it\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Files voicetui writes hold someone's voice and words: owner only,
	// even one that was there before with looser permissions.
	os.WriteFile(filepath.Join(dir, "log.txt"), []byte("an older log\n"), 0o644)
	cmd := exec.CommandContext(ctx, binary, "--headless", "--record", filepath.Join(dir, "rec"), "--stt-script", script, "--log-file", filepath.Join(dir, "log.txt"))
	cmd.Env = append(os.Environ(), noCredentials...)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan event, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			json.Unmarshal(sc.Bytes(), &e)
			lines <- e
		}
		close(lines)
	}()
	wait := func(what string, ok func(event) bool) {
		t.Helper()
		for {
			select {
			case e, more := <-lines:
				if !more {
					t.Fatalf("voicetui ended before %s: %s", what, stderr.String())
				}
				if ok(e) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s", what)
			}
		}
	}
	wait("listening", func(e event) bool { return e["agent"] == "listening" })
	rec := speakIntoMic(t, ctx, "What time is it?")
	wait("the reply", func(e event) bool { return e.typ() == "agent_text" && e["final"] == true })
	wait("the end of the reply", func(e event) bool { return e.typ() == "metrics" })
	cmd.Process.Signal(syscall.SIGINT)
	wait("close", func(e event) bool { return e.typ() == "close" && e["reason"] == "user" })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v: %s", err, stderr.String())
	}
	if _, ok := rec.FirstSound(); !ok {
		t.Fatal("the reply never reached the virtual speaker")
	}
	for _, f := range []string{"mic.wav", "speaker.wav"} {
		pcm, _, err := audio.ReadWAVFile(filepath.Join(dir, "rec", f))
		if err != nil || audio.RMS(pcm) < -50 {
			t.Errorf("%s: %v, %.1f dBFS", f, err, audio.RMS(pcm))
		}
	}
	log, err := os.ReadFile(filepath.Join(dir, "rec", "events.jsonl"))
	if err != nil || !strings.Contains(string(log), `"type":"close","reason":"user"`) {
		t.Fatalf("events.jsonl: %v %s", err, log)
	}
	for f, want := range map[string]os.FileMode{"rec": 0o700 | os.ModeDir, "rec/mic.wav": 0o600, "rec/speaker.wav": 0o600, "rec/events.jsonl": 0o600, "log.txt": 0o600} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Mode() != want {
			t.Errorf("%s: %v %v, want %v", f, st.Mode(), err, want)
		}
	}
}

// speakIntoMic starts recording the virtual speaker, then says sentence
// into the virtual microphone (real speech, framed by silence).
func speakIntoMic(t *testing.T, ctx context.Context, sentence string) *pulsetest.Recording {
	t.Helper()
	rec, err := server.Record("spk", 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Stop() })
	speech, _, err := audio.ReadWAVFile(spokenWAV(t, 500*time.Millisecond, sentence, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.FeedMic(ctx, speech); err != nil {
		t.Fatal(err)
	}
	return rec
}

// A recording that cannot be written is said, not dropped in silence.
func TestRecordFailureIsReported(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rec")
	os.MkdirAll(dir, 0o755)
	if err := os.Symlink("/dev/full", filepath.Join(dir, "mic.wav")); err != nil {
		t.Fatal(err)
	}
	in := spokenWAV(t, time.Second, "What time is it?", 3*time.Second)
	r := runHeadless(t, in, []string{"what time is it"}, "--record", dir)
	for _, e := range r.of("error") {
		if msg, _ := e["message"].(string); strings.Contains(msg, "--record stopped: mic.wav") {
			return
		}
	}
	t.Fatalf("no error event about the recording: %v", r.of("error"))
}

// A provider that owes an answer and does not give it (the watchdogs of
// pipeline/session/owed.go), through the real binary and the embedded
// gateway's faults: an error event of the stage, the turn-failed earcon in
// the output within a second of the error, and the session goes on.
func TestSessionWatchdogs(t *testing.T) {
	cases := []struct {
		name, fault, stage, within string
	}{
		{"finalize never answered", "stt:delay=8s:count=1", "stt", "3s"},
		{"LLM stream of keepalives only", "llm:keepalive:count=1", "llm", "10s"},
		{"TTS socket of keepalives only", "tts:keepalive:count=1", "tts", "10s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := spokenWAV(t, time.Second, "What time is it?", 13*time.Second, "Hello.", 4*time.Second)
			r := runHeadless(t, in, []string{"what time is it", "hello"}, "--fault", tc.fault)
			var failed event
			for _, e := range r.of("error") {
				if e["stage"] == tc.stage && strings.Contains(e["message"].(string), "no answer within "+tc.within) {
					failed = e
					break
				}
			}
			if failed == nil {
				t.Fatalf("no %s error saying 'no answer within %s':\n%s", tc.stage, tc.within, r.stdout)
			}
			var earcon event
			for _, f := range r.of("fallback") {
				if f["clip"] == "earcon_failed" && f["ok"] == true {
					earcon = f
				}
			}
			at, ok := r.clipAt(t, bundled(t, fallback.EarconFailed))
			if earcon == nil || !ok || at < failed.at()-100*time.Millisecond || at > failed.at()+time.Second {
				t.Fatalf("earcon event %v, heard at %v (%v), error at %v", earcon, at, ok, failed.at())
			}
			// The session went on: the next turn was answered, with its own
			// words only.
			var replies []string
			for _, a := range r.of("agent_text") {
				if a["final"] == true {
					replies = append(replies, a["text"].(string))
				}
			}
			if len(replies) == 0 || r.close()["reason"] != "input_ended" || r.code != 0 {
				t.Fatalf("replies %q, close %v, exit %d", replies, r.close(), r.code)
			}
			for _, tr := range r.of("transcript") {
				if tr["final"] == true && strings.Count(tr["text"].(string), " ") > 3 {
					t.Fatalf("a transcript joined two turns: %v", tr)
				}
			}
		})
	}
}
