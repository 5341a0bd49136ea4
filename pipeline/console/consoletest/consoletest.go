// Package consoletest gives console-mode tests a real agents-js 1.9.0
// agent from npm (the install pipelinetest/agentsjs caches for the room
// tests), with agent.mjs (one tool) written beside its node_modules.
package consoletest

import (
	"bytes"
	_ "embed"
	"os"
	"path/filepath"
	"testing"

	"github.com/voicetui/voicetui/pipeline/pipelinetest/agentsjs"
)

//go:embed agent.mjs
var agentFile []byte

// AgentFile is the agent's source, for tools that ship it.
func AgentFile() []byte { return agentFile }

// Agent returns the directory agents-js is installed in and the path of
// agent.mjs there, installing it the first time. It fails the test, never
// skips it, when Node.js or npm is missing.
func Agent(t testing.TB) (dir, file string) {
	t.Helper()
	dir = agentsjs.Install(t)
	file = filepath.Join(dir, "console-agent.mjs")
	if old, err := os.ReadFile(file); err != nil || !bytes.Equal(old, agentFile) {
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, agentFile, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	return dir, file
}
