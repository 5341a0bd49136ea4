package roomtest_test

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/voicetui/voicetui/pipeline/localgw"
	"github.com/voicetui/voicetui/pipeline/room/roomtest"
)

func TestMain(m *testing.M) { roomtest.Main(m) }

// TestNamespaceIsolated proves that nothing here can reach the machine's
// own interfaces or the outside.
func TestNamespaceIsolated(t *testing.T) {
	if err := roomtest.CheckIsolated(); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "-o", "addr").CombinedOutput()
	if err != nil {
		t.Fatalf("ip -o addr: %v\n%s", err, out)
	}
	t.Logf("ip -o addr:\n%s", out)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || (f[1] != "lo" && f[1] != "vt0" && f[1] != "vt1") || f[2] != "inet" {
			t.Errorf("unexpected address line: %s", line)
		}
	}
	routes, _ := exec.Command("ip", "-o", "route", "show", "table", "all").CombinedOutput()
	t.Logf("ip -o route show table all:\n%s", routes)
	if strings.Contains(string(routes), "default") {
		t.Errorf("a default route exists")
	}
	// Outside addresses are unreachable, and the host's resolver with them.
	for _, addr := range []string{"1.1.1.1:53", "8.8.8.8:443", "[2606:4700::1111]:53"} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			c.Close()
			t.Errorf("dial %s succeeded", addr)
		} else if !errors.Is(err, syscall.ENETUNREACH) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Errorf("dial %s: %v (want network unreachable)", addr, err)
		}
	}
	if os.Getppid() != 1 {
		t.Errorf("parent is %d, want the namespace's init (1)", os.Getppid())
	}
}

// TestServerAndAgent starts the server and the agent (no client): what
// every room test pays before it starts.
func TestServerAndAgent(t *testing.T) {
	gw, err := localgw.New(localgw.Options{STTScript: []string{"hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(roomtest.ServerIP + ":0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close(context.Background()) })
	srv := roomtest.StartServer(t)
	a := roomtest.StartAgent(t, srv, roomtest.InferenceEnv(gw))
	a.WaitLog(t, `"prewarmed"`, 30*time.Second)
	t.Logf("server answered in %s, worker registered in %s", srv.StartupTime().Round(time.Millisecond), a.RegistrationTime().Round(time.Millisecond))
}
