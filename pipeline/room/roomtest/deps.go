package roomtest

import (
	"bytes"
	"debug/buildinfo"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/voicetui/voicetui/pipeline/pipelinetest/agentsjs"
)

// Pinned versions. Newer livekit-server releases depend on pion forks the
// Go module proxy does not serve; the agent's versions are pinned by
// pipelinetest/agentsjs (@livekit/agents 1.9.0, agents-plugin-silero 1.9.0).
const (
	LiveKitServerModule  = "github.com/livekit/livekit-server"
	LiveKitServerVersion = "v1.13.5"
)

// The agent, written next to agents-js's node_modules.
//
//go:embed agent/agent.mjs
var agentFiles embed.FS

// CacheDir is where the dependencies are kept: $VOICETUI_CACHE, else
// os.UserCacheDir()/voicetui.
func CacheDir() (string, error) { return filepath.Abs(agentsjs.CacheDir()) }

// prepare makes every dependency ready in the cache. It holds an exclusive
// lock on the cache meanwhile: `go test ./...` runs several test binaries
// at once.
func prepare() (*Deps, error) {
	cache, err := CacheDir()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	unlock, err := lockDir(cache)
	if err != nil {
		return nil, err
	}
	defer unlock()
	d := &Deps{Cache: cache}
	if d.Server, err = ensureServer(cache); err != nil {
		return nil, err
	}
	if d.AgentDir, err = ensureAgent(); err != nil {
		return nil, err
	}
	if d.Node, err = exec.LookPath("node"); err != nil {
		return nil, err
	}
	return d, nil
}

func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "roomtest.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		logf("waiting for another test binary preparing %s", dir)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", dir, err)
		}
	}
	return func() { f.Close() }, nil
}

// ensureServer returns the livekit-server binary, building it with `go
// install` unless the cached one says it is LiveKitServerVersion.
func ensureServer(cache string) (string, error) {
	dir := filepath.Join(cache, "livekit-server", LiveKitServerVersion)
	bin := filepath.Join(dir, "server")
	if info, err := buildinfo.ReadFile(bin); err == nil &&
		info.Main.Path == LiveKitServerModule && info.Main.Version == LiveKitServerVersion {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building livekit-server needs the go command: %w", err)
	}
	tmp, err := os.MkdirTemp(cache, "livekit-server-build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	pkg := LiveKitServerModule + "/cmd/server@" + LiveKitServerVersion
	cmd := exec.Command(goBin, "install", pkg)
	cmd.Dir = tmp // outside any module
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=", "GOWORK=off")
	if err := timed("building livekit-server "+LiveKitServerVersion, "go install; first run only, about 2 minutes", filepath.Join(cache, "livekit-server-build.log"), cmd); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	return bin, os.Rename(filepath.Join(tmp, "server"), bin)
}

// ensureAgent returns the directory of the pinned agents-js install (the
// one pipelinetest/agentsjs makes, shared with the gateway's tests) with
// this package's agent.mjs written into it: Node resolves the agent's
// imports from where it is. It is rewritten only when it changed, so an
// edit needs no reinstall.
func ensureAgent() (string, error) {
	dir, err := agentsjs.InstallDir()
	if err != nil {
		return "", err
	}
	b, err := agentFiles.ReadFile("agent/agent.mjs")
	if err != nil {
		return "", err
	}
	return dir, writeIfChanged(filepath.Join(dir, "agent.mjs"), b)
}

// timed runs cmd with its output in logPath, telling stderr what takes time.
func timed(what, detail, logPath string, cmd *exec.Cmd) error {
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	logf("%s (%s) ...", what, detail)
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %v after %s; log %s:\n%s", cmd, err, time.Since(start).Round(time.Second), logPath, tailFile(logPath, 40))
	}
	logf("%s: done in %s", what, time.Since(start).Round(100*time.Millisecond))
	return nil
}

func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// tailFile returns the last n lines of a file (or why it cannot).
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

var errNotInNamespace = errors.New("roomtest: not inside the test namespace: call roomtest.Main(m) from TestMain")
