package pulsetest

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Tests that play, record or talk in real time (the devices, the binary,
// rooms) fail when they starve: on a 2-core machine two of them at once,
// or one beside a CPU-heavy package, miss their deadlines. `go test ./...`
// runs packages in parallel, so each such package takes this machine-wide
// lock for the whole of its run, whatever flags it was started with; the
// others wait their turn.

// realtimeLock is the lock file, shared by every test binary of the
// machine (the temporary directory, as the go command's own test runs).
func realtimeLock() string { return filepath.Join(os.TempDir(), "voicetui-realtime-tests.lock") }

// LockRealtime waits until no other real-time test package runs, then
// holds the lock until unlock is called or the process exits (the kernel
// drops it with the file, even on a crash). Call it from TestMain before
// the tests start. The wait does not count toward the test binary's own
// -timeout, but it does toward the go command's, which kills a test binary
// one minute after -timeout from its start: so no real-time package may
// run for long (cmd/voicetui/journeys splits the longest ones out). It
// says on stderr when it has to wait.
func LockRealtime() (unlock func(), err error) {
	f, err := os.OpenFile(realtimeLock(), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("real-time test lock: %w", err)
	}
	unlock = func() { f.Close() }
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
		return unlock, nil
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "pulsetest: waiting for another package's real-time tests to end (%s)\n", realtimeLock())
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("real-time test lock %s: %w", realtimeLock(), err)
	}
	fmt.Fprintf(os.Stderr, "pulsetest: waited %.1fs for the real-time test lock\n", time.Since(start).Seconds())
	return unlock, nil
}
