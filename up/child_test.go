package up

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestStopAllChildNeverStarted: kdr up stopped while it still waited for
// the clusters stops the mirror workers it had not started yet, which once
// left stopAll waiting for ever.
func TestStopAllChildNeverStarted(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := newChild("east->west worker 0", "/nonexistent/kdr", t.TempDir()+"/w.log", func() []string { return nil }, logger, nil)
	stopped := make(chan struct{})
	go func() {
		stopAll(logger, "mirror workers", []*child{c}, time.Second)
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("stopAll still waits for a child that was never started")
	}
	// A run that begins after the stop starts nothing and returns.
	ran := make(chan struct{})
	go func() {
		c.run()
		close(ran)
	}()
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("run of a stopped child did not return")
	}
	if c.pid() != 0 || c.restartCount() != 0 {
		t.Fatalf("a stopped child ran: pid %d, %d restarts", c.pid(), c.restartCount())
	}
}
