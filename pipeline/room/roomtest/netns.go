package roomtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Addresses inside the namespace. livekit-server listens on ServerIP (vt0);
// clients have both ends of the veth pair to gather candidates on.
const (
	ServerIP = "10.77.0.1" // vt0
	PeerIP   = "10.77.0.2" // vt1
)

// expectedAddrs are the only interface addresses the namespace may have.
var expectedAddrs = map[string][]string{
	"lo":  {"127.0.0.1/8"},
	"vt0": {ServerIP + "/24"},
	"vt1": {PeerIP + "/24"},
}

// setupNamespace runs in init (PID 1 of fresh net, pid and mount namespaces).
func setupNamespace() error {
	// Mount events must not propagate to the host (its / is usually shared),
	// then a /proc that shows this PID namespace (and this netns's sysctls).
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	// No IPv6 before any link comes up: no ::1, no fe80:: addresses, so pion
	// gathers only the IPv4 addresses below.
	for _, k := range []string{"all", "default"} {
		f := "/proc/sys/net/ipv6/conf/" + k + "/disable_ipv6"
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("disabling IPv6: %w", err)
		}
	}
	script := strings.Join([]string{
		"link set lo up",
		"link add vt0 type veth peer name vt1",
		"addr add " + ServerIP + "/24 dev vt0",
		"addr add " + PeerIP + "/24 dev vt1",
		"link set vt0 up",
		"link set vt1 up",
	}, "\n") + "\n"
	cmd := exec.Command("ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -batch: %v: %s", err, out)
	}
	// A veth's carrier comes up asynchronously. (/sys is still the host's
	// sysfs: ask netlink, as pion does, not /sys/class/net.)
	deadline := time.Now().Add(5 * time.Second)
	for {
		up := 0
		for _, name := range []string{"vt0", "vt1"} {
			if ifc, err := net.InterfaceByName(name); err == nil && ifc.Flags&net.FlagRunning != 0 {
				up++
			}
		}
		if up == 2 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vt0/vt1 not running after 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return CheckIsolated()
}

// CheckIsolated verifies that the interfaces and addresses visible to this
// process are exactly lo 127.0.0.1/8, vt0 10.77.0.1/24 and vt1
// 10.77.0.2/24: nothing of the machine's own network, no IPv6.
func CheckIsolated() error {
	got, err := InterfaceAddrs()
	if err != nil {
		return err
	}
	if len(got) != len(expectedAddrs) {
		return fmt.Errorf("not isolated: interfaces %v, want exactly %v", got, expectedAddrs)
	}
	for name, want := range expectedAddrs {
		if !slices.Equal(got[name], want) {
			return fmt.Errorf("not isolated: %s has %v, want %v (all: %v)", name, got[name], want, got)
		}
	}
	return nil
}

// InterfaceAddrs lists every interface this process sees with its
// addresses (CIDR notation), as pion and node see them (netlink).
func InterfaceAddrs() (map[string][]string, error) {
	ifcs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, ifc := range ifcs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, err
		}
		m[ifc.Name] = []string{}
		for _, a := range addrs {
			m[ifc.Name] = append(m[ifc.Name], a.String())
		}
		slices.Sort(m[ifc.Name])
	}
	return m, nil
}
