package console

import "syscall"

// procAttr: a group of its own, and SIGKILL when voicetui's thread dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
