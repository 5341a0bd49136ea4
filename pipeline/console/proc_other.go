//go:build !linux

package console

import (
	"net"
	"syscall"
)

// procAttr: a group of its own (no parent-death signal here: stop ends
// the agent on every way voicetui closes).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// sameUser cannot be told here: the port is random and on loopback only.
func sameUser(net.Conn) bool { return true }
