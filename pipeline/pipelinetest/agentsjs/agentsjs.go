// Package agentsjs installs the reference LiveKit client, the Node.js
// @livekit/agents 1.9.0 (with its Silero VAD plugin), from npm for tests
// that check voicetui against a peer it did not write: the embedded
// gateway against agents-js's inference clients, and room mode against a
// real agents-js agent. The versions are pinned by npm/package-lock.json.
//
// The install (about 500 MB, 15-40 s) is cached under $VOICETUI_CACHE
// (default ~/.cache/voicetui), keyed by the lockfile, so it happens once
// per machine; test binaries that need it at the same time take turns.
package agentsjs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed npm/package.json npm/package-lock.json
var npmFiles embed.FS

// MinNode is the oldest Node.js major version agents-js 1.9.0 runs on.
const MinNode = 20

// CacheDir is where voicetui's tests keep what they build or download.
func CacheDir() string {
	if d := os.Getenv("VOICETUI_CACHE"); d != "" {
		return d
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "voicetui")
	}
	return filepath.Join(os.TempDir(), "voicetui-cache")
}

// Install returns a directory whose node_modules holds the pinned
// agents-js, installing it with `npm ci` the first time. It fails the
// test, never skips it, when Node.js or npm is missing or too old, or the
// install fails.
func Install(t testing.TB) string {
	t.Helper()
	dir, err := InstallDir()
	if err != nil {
		t.Fatalf("agents-js: %v", err)
	}
	return dir
}

// InstallDir is Install for code that is not a test (a TestMain).
func InstallDir() (string, error) {
	if err := checkNode(); err != nil {
		return "", err
	}
	lock, err := npmFiles.ReadFile("npm/package-lock.json")
	if err != nil {
		return "", err
	}
	pkg, err := npmFiles.ReadFile("npm/package.json")
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append(append([]byte(nil), pkg...), lock...))
	dir := filepath.Join(CacheDir(), "agents-js-"+hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// One installer at a time across processes (go test runs packages in
	// parallel).
	lf, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return "", err
	}
	defer syscall.Flock(int(lf.Fd()), syscall.LOCK_UN)
	done := filepath.Join(dir, ".installed")
	if _, err := os.Stat(done); err == nil {
		return dir, nil
	}
	os.RemoveAll(filepath.Join(dir, "node_modules")) // a half install
	if err := os.WriteFile(filepath.Join(dir, "package.json"), pkg, 0o644); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "package-lock.json"), lock, 0o644); err != nil {
		return "", err
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "agents-js: installing @livekit/agents 1.9.0 from npm into %s (once per machine)\n", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Dir = dir
	// onnxruntime's post-install would download binaries the package
	// already ships.
	cmd.Env = append(os.Environ(), "ONNXRUNTIME_NODE_INSTALL=skip")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci in %s: %v\n%s", dir, err, tail(out.String(), 3000))
	}
	fmt.Fprintf(os.Stderr, "agents-js: installed in %.0f s\n", time.Since(start).Seconds())
	return dir, os.WriteFile(done, nil, 0o644)
}

// checkNode says what to install when node or npm is missing or too old.
func checkNode() error {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return fmt.Errorf("node is not installed: Node.js %d or newer is needed (https://nodejs.org; Debian 12's own nodejs is too old)", MinNode)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if major < MinNode {
		return fmt.Errorf("node %s is too old: agents-js 1.9.0 needs Node.js %d or newer", v, MinNode)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return fmt.Errorf("npm is not installed (it comes with Node.js %d)", MinNode)
	}
	return nil
}

// Node runs `node script args...` with env added and returns its stdout;
// a failure shows its stderr. The script is copied into dir (an Install
// directory) first: Node resolves an ES module's imports from where the
// module is, so @livekit/agents must be beside it.
func Node(t testing.TB, ctx context.Context, dir, script string, env []string, args ...string) ([]byte, error) {
	t.Helper()
	src, err := os.ReadFile(script)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "run-*-"+filepath.Base(script))
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(src); err != nil {
		f.Close()
		return nil, err
	}
	f.Close()
	cmd := exec.CommandContext(ctx, "node", append([]string{f.Name()}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("node %s %s: %v\nstderr:\n%s", filepath.Base(script), strings.Join(args, " "), err, tail(stderr.String(), 4000))
	}
	return out, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
