//go:build !linux

package console

import "syscall"

// procAttr: a group of its own (no parent-death signal here: stop ends
// the agent on every way voicetui closes).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
