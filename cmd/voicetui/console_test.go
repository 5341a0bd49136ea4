package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestConsoleFlags(t *testing.T) {
	c, err := parseFlags([]string{"console", "--headless", "--quota", "llm:credits", "--", "node", "agent.mjs", "--verbose"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.command != "console" || !c.headless || c.inference != "embedded" || len(c.provider.Local.Quotas) != 1 ||
		!slices.Equal(c.agentArgs, []string{"node", "agent.mjs", "--verbose"}) {
		t.Fatalf("%+v", c)
	}
	for _, bad := range [][]string{
		{"console", "--inference", "cloud", "--", "node", "a.mjs"},
		{"console", "--inference", "direct", "--quota", "llm:credits", "--", "node", "a.mjs"},
		{"console", "--connect-wait", "1ms", "--", "node", "a.mjs"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The agent's inference goes to the gateway here, under both names
// agents-js reads; the user's own credentials do not reach the agent.
func TestAgentGatewayEnv(t *testing.T) {
	env := agentGatewayEnv([]string{"PATH=/bin", "LIVEKIT_API_KEY=users-key", "LIVEKIT_INFERENCE_API_SECRET=users-secret", "LIVEKIT_URL=wss://x"},
		"http://127.0.0.1:5/v1", "devkey", "secret")
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup {
			t.Fatalf("%s twice in %q", k, env)
		}
		got[k] = v
	}
	want := map[string]string{"PATH": "/bin", "LIVEKIT_URL": "wss://x", "LIVEKIT_INFERENCE_URL": "http://127.0.0.1:5/v1",
		"LIVEKIT_API_KEY": "devkey", "LIVEKIT_API_SECRET": "secret", "LIVEKIT_INFERENCE_API_KEY": "devkey", "LIVEKIT_INFERENCE_API_SECRET": "secret"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	if strings.Contains(strings.Join(env, " "), "users-") {
		t.Errorf("the user's credentials reach the agent: %q", env)
	}
}

func TestVersion(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"--version"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "voicetui dev") || !strings.Contains(out.String(), "echo cancellation") {
		t.Fatalf("--version: %q", out.String())
	}
}
