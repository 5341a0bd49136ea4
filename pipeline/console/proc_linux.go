package console

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procAttr: a group of its own, and SIGKILL when voicetui's thread dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// sameUser reports whether the peer of conn (a loopback TCP connection)
// belongs to this process's user, from the socket table: a connection
// from another user's process must not hear the microphone.
func sameUser(conn net.Conn) bool {
	peer, ok := conn.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return false
	}
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return true // no socket table to read (a restricted /proc): loopback only, as before
	}
	ip := peer.IP.To4()
	if ip == nil {
		return false
	}
	// /proc/net/tcp writes the address as the kernel holds it: the IPv4
	// bytes as a little-endian word, then the port, both in hex.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], peer.Port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 7 && f[1] == want {
			uid, err := strconv.Atoi(f[7])
			return err == nil && uid == os.Getuid()
		}
	}
	return false
}
