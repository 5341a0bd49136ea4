//go:build !linux

package device

import "syscall"

// drainWake empties the wake pipe (stream.h), which would otherwise fill
// and stop carrying wakes.
func drainWake(fd uintptr) {
	var b [64]byte
	for {
		if n, err := syscall.Read(int(fd), b[:]); n <= 0 || err != nil {
			return
		}
	}
}
