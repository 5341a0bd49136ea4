package pulsetest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Waiters take turns by arrival; a dead waiter's ticket does not hold
// the line.
func TestWaitTurnIsFirstComeFirstServed(t *testing.T) {
	t.Setenv("TMPDIR", t.TempDir())
	dir := queueDir()
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	dead := filepath.Join(dir, fmt.Sprintf("%020d-%d", now-2000, 1<<22+7))       // the oldest, but no such process
	older := filepath.Join(dir, fmt.Sprintf("%020d-%d", now-1000, os.Getppid())) // alive: our parent
	for _, f := range []string{older, dead} {
		if err := os.WriteFile(f, nil, 0o666); err != nil {
			t.Fatal(err)
		}
	}
	if !othersWaiting() {
		t.Fatal("a live waiter is not seen")
	}
	got := make(chan func(), 1)
	go func() {
		leave, err := waitTurn()
		if err != nil {
			t.Error(err)
		}
		got <- leave
	}()
	select {
	case <-got:
		t.Fatal("went before an older live waiter")
	case <-time.After(500 * time.Millisecond):
	}
	if _, err := os.Stat(dead); !os.IsNotExist(err) {
		t.Fatal("a dead waiter's ticket was kept")
	}
	os.Remove(older)
	select {
	case leave := <-got:
		leave()
	case <-time.After(5 * time.Second):
		t.Fatal("not its turn after the older waiter left")
	}
	if names, _ := os.ReadDir(dir); len(names) != 0 {
		t.Fatalf("tickets left: %v", names)
	}
}
