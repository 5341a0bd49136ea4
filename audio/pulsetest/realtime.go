package pulsetest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	if !othersWaiting() { // a waiter in line goes first, even to a free lock
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			return unlock, nil
		}
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "pulsetest: waiting for another package's real-time tests to end (%s)\n", realtimeLock())
	// Waiters take turns in the order they came: flock wakes them all
	// and any may win, so a package could wait behind several others and
	// pass the go command's 11 minutes.
	leave, err := waitTurn()
	if err != nil {
		f.Close()
		return nil, err
	}
	defer leave() // once the lock is ours: the next in line goes to it then
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("real-time test lock %s: %w", realtimeLock(), err)
	}
	fmt.Fprintf(os.Stderr, "pulsetest: waited %.1fs for the real-time test lock\n", time.Since(start).Seconds())
	return unlock, nil
}

// queueDir holds one ticket per waiting test binary, named by when it
// came and its pid.
func queueDir() string { return filepath.Join(os.TempDir(), "voicetui-realtime-queue") }

// othersWaiting reports whether a live test binary waits in line.
func othersWaiting() bool {
	names, _ := os.ReadDir(queueDir())
	for _, e := range names {
		if alive(e.Name()) {
			return true
		}
	}
	return false
}

// alive reports whether the waiter of a ticket still runs.
func alive(ticket string) bool {
	_, pid, _ := strings.Cut(ticket, "-")
	n, err := strconv.Atoi(pid)
	return err == nil && syscall.Kill(n, 0) != syscall.ESRCH
}

// waitTurn waits until this process's ticket is the oldest of the live
// waiters; leave removes the ticket (call it once the lock is held).
func waitTurn() (leave func(), err error) {
	dir := queueDir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fmt.Errorf("real-time test queue: %w", err)
	}
	mine := fmt.Sprintf("%020d-%d", time.Now().UnixNano(), os.Getpid())
	if err := os.WriteFile(filepath.Join(dir, mine), nil, 0o666); err != nil {
		return nil, fmt.Errorf("real-time test queue: %w", err)
	}
	leave = func() { os.Remove(filepath.Join(dir, mine)) }
	for {
		names, err := os.ReadDir(dir) // sorted by name: by arrival
		if err != nil {
			leave()
			return nil, fmt.Errorf("real-time test queue: %w", err)
		}
		for _, e := range names {
			if e.Name() == mine {
				return leave, nil
			}
			if !alive(e.Name()) {
				os.Remove(filepath.Join(dir, e.Name())) // a waiter that died
				continue
			}
			break // an older live waiter goes first
		}
		time.Sleep(100 * time.Millisecond)
	}
}
