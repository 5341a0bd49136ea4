package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddr finds a loopback port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestGatewayCommandServesOtherClients(t *testing.T) {
	addr := freeAddr(t)
	script := t.TempDir() + "/script.txt"
	os.WriteFile(script, []byte("what time is it\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "gateway", "--addr", addr, "--key", "qa", "--secret", "qa-secret", "--stt-script", script, "--quota", "tts:credits:after=5", "--control-token", "qa-control")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() || !strings.Contains(lines.Text(), "embedded gateway listening on http://"+addr+"/v1 (key qa, secret the one given with --secret)") {
		t.Fatalf("first line %q", lines.Text())
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), "X-Voicetui-Control: qa-control") {
		t.Fatalf("second line %q", lines.Text())
	}
	go io.Copy(io.Discard, stderr)

	env := append(noCredentials, "LIVEKIT_INFERENCE_URL=http://"+addr+"/v1", "LIVEKIT_API_KEY=qa", "LIVEKIT_API_SECRET=qa-secret")
	r := voicetui(t, env, "ask", "help")
	if r.code != 0 || !strings.Contains(r.stdout, "embedded demo agent") || !strings.Contains(r.stderr, "LiveKit Inference at http://"+addr) {
		t.Fatalf("ask through the standalone gateway: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Quota at run time through the control endpoint.
	control := func(method, path string) (*http.Response, error) {
		req, _ := http.NewRequest(method, "http://"+addr+"/control"+path, nil)
		req.Header.Set("X-Voicetui-Control", "qa-control")
		return http.DefaultClient.Do(req)
	}
	resp, err := control("POST", "/quota?rule=llm:credits")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control: %v %v", resp, err)
	}
	resp.Body.Close()
	if r := voicetui(t, env, "ask", "help"); r.code != exitQuota {
		t.Fatalf("after llm:credits: exit %d %q", r.code, r.stderr)
	}
	status, _ := control("GET", "/status")
	body, _ := io.ReadAll(status.Body)
	status.Body.Close()
	if !strings.Contains(string(body), "tts:credits:after=5") || !strings.Contains(string(body), "llm:credits") {
		t.Fatalf("status %s", body)
	}
	// A wrong secret is refused.
	bad := append(noCredentials, "LIVEKIT_INFERENCE_URL=http://"+addr+"/v1", "LIVEKIT_API_KEY=qa", "LIVEKIT_API_SECRET=guess")
	if r := voicetui(t, bad, "ask", "help"); r.code != exitQuota || !strings.Contains(r.stderr, "401") {
		t.Fatalf("wrong secret: exit %d %q", r.code, r.stderr)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("gateway exit: %v", err)
	}
}

func TestGatewayCommandAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r := voicetui(t, nil, "gateway", "--addr", ln.Addr().String())
	if r.code != exitDevice || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("exit %d %q", r.code, r.stderr)
	}
}
